"""One command's view of a project: read once, names derived in one place."""

from __future__ import annotations

from pathlib import Path

from testdock.workspace import Workspace, as_workspace
from tests.conftest import write_tree


def test_the_workspace_reads_once_and_names_the_images(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": '[project]\nname = "Demo_App"\nversion = "1"\n'
                                            '[tool.testdock]\nproject = "demo"\n'
                                            '[tool.testdock.build]\nregistry = "127.0.0.1:5000/team"\n',
                          "demo_app/__init__.py": ""})
    workspace = Workspace.load(tmp_path / "." / "")
    assert workspace.root == tmp_path.resolve() and workspace.prefix == "demo"
    assert workspace.image("stress", "v1") == "demo-stress:v1"
    assert workspace.registry() == "127.0.0.1:5000/team" and workspace.registry("") == ""
    assert workspace.image("execution", "v1", workspace.registry()) == "127.0.0.1:5000/team/demo-execution:v1"
    assert as_workspace(workspace) is workspace  # passed down, never read again
    assert as_workspace(tmp_path).prefix == "demo"
