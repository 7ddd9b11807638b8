"""The tools testdock's images install whatever the project asks for (its own pins of them, from an
unused extra, must not replace them)."""

from __future__ import annotations

from testdock.project.requirements import names

# versions float within their major line
EXECUTION_TOOLS = ("pytest>=8", "pytest-xdist>=3.5", "pytest-cov>=5", "pytest-timeout>=2.3",
                   "psutil>=5.9")
STRESS_TOOLS = ("memray>=1.11", "py-spy>=0.3.14", "pympler>=1.0", "memory-profiler>=0.61",
                "pytest-benchmark>=4", "pytest-html>=4", "locust>=2.20")
BACKEND_TOOLS = ("uvicorn>=0.29", "pytest>=8", "psutil>=5.9")
COLLECTION_TOOLS = ("pytest>=8",)
# the pytest releases a project's files may need the images to stay below (see legacyhooks), each
# with the last release before it: a project's own pytest requirement that admits that one
# admits holding back
LAST_PYTEST_BEFORE = {"9": "8.4.2", "9.1": "9.0.3"}
# what those tools need in their turn and only they pin tightly: a project's pin of one (tornado's
# requirements.txt, a pip-compile lock of tox, pins pluggy==1.0.0) would make them uninstallable
TOOL_DEPENDENCIES = ("pluggy", "iniconfig", "execnet", "coverage")
UV = "uv>=0.9,<1"  # installs the dependencies in the build stages, never in a final image

# every name above, canonical: pytest, pytest-xdist, coverage (through pytest-cov)...
TOOL_NAMES = frozenset(names([*EXECUTION_TOOLS, *STRESS_TOOLS, *BACKEND_TOOLS, *COLLECTION_TOOLS,
                              "coverage"]))


def pin_within_tools(pin: str) -> bool:
    """Whether a project's pin (`pytest==9.0.2`, with or without markers) may constrain the
    images: any pin of a name that is not one of their tools; a tool's exact pin where the tools'
    own requirements of it admit the version (a project tested with pytest 9.0.2 gets it, one
    pinning pytest 7 gets the tools' pytest). What the tools depend on stays free: a lock's pin of
    pluggy or coverage fits its own pytest, not necessarily the one installed."""
    from packaging.requirements import InvalidRequirement, Requirement

    found = names([pin])
    if not found & TOOL_NAMES and not found & names(TOOL_DEPENDENCIES):
        return True
    if found & names(TOOL_DEPENDENCIES):
        return False
    try:
        requirement = Requirement(pin)
    except InvalidRequirement:
        return False
    specifiers = list(requirement.specifier)
    if len(specifiers) != 1 or specifiers[0].operator != "==":
        return False
    version = specifiers[0].version
    ours = [Requirement(text) for text in (*EXECUTION_TOOLS, *STRESS_TOOLS, *BACKEND_TOOLS, *COLLECTION_TOOLS)
            if names([text]) == found]
    return all(tool.specifier.contains(version, prereleases=True) for tool in ours)
