"""Which requirement a failed `pip install` in an image build was on. pip names it at the top
level only when it builds wheels; a failure preparing an sdist's metadata or installing its build
dependencies ends in `error: subprocess-exited-with-error`, hundreds of lines after the
`Collecting` line that names the culprit."""

from __future__ import annotations

import re

_BUILD_OUTPUT = re.compile(r"^#\d+ \d+(?:\.\d+)? (.*)$")  # BuildKit's "#10 29.23 " prefix
_SOURCE_ARCHIVE = re.compile(r"\.(?:tar\.gz|tar\.bz2|tgz|zip)\b")
_UNNAMED_FAILURES = ("error: subprocess-exited-with-error", "error: metadata-generation-failed")


class PipWatch:
    """Fed a build's output line by line; remembers what pip was collecting when it failed."""

    def __init__(self) -> None:
        self._collecting = ""
        self._from_source = False
        self.failed: tuple[str, bool] | None = None  # (requirement, built from source)

    def feed(self, text: str) -> None:
        match = _BUILD_OUTPUT.match(text)
        body = match.group(1) if match else text
        if body.startswith("Collecting "):
            self._collecting, self._from_source = body.split()[1], False
        elif body.startswith(("  Downloading ", "  Using cached ")) and self._collecting:
            self._from_source = bool(_SOURCE_ARCHIVE.search(body))
        elif body.startswith(_UNNAMED_FAILURES) and self._collecting and self.failed is None:
            self.failed = (self._collecting, self._from_source)

    def explanation(self) -> str | None:
        """One line naming the requirement pip failed on, and what to do; None if not known."""
        if self.failed is None:
            return None
        requirement, from_source = self.failed
        if from_source:
            return (f"pip failed on {requirement}, built from source (no wheel of it for this Python): "
                    "allow a version that has one, or name what it needs to compile in "
                    "[tool.testdock] build_packages")
        return f"pip failed on {requirement}"
