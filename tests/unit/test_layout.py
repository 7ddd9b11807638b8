"""The package layout: a submodule never shadows what its package's __init__ defines (importing
`testdock.engine.build` would replace the facade's `engine.build` function with the module)."""

from __future__ import annotations

import ast

from tests.conftest import REPO


def test_no_submodule_shadows_a_name_its_package_defines() -> None:
    clashes = []
    for init in sorted((REPO / "src").rglob("__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        defined = {node.name for node in tree.body
                   if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)}
        defined |= {target.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
        submodules = {path.stem for path in init.parent.glob("*.py")} | {
            path.parent.name for path in init.parent.glob("*/__init__.py")}
        clashes += [f"{init.parent.relative_to(REPO)}: {name}" for name in sorted(defined & submodules)]
    assert clashes == []


def test_every_package_says_what_it_is() -> None:
    silent = [str(init.relative_to(REPO)) for init in sorted((REPO / "src").rglob("__init__.py"))
              if ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) is None]
    assert silent == []
