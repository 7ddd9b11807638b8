"""Finding the ASGI/WSGI application object by reading (never importing) the sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testdock.project.apps import AppRef, detect_app
from tests.conftest import write_tree

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "projects"


write = write_tree


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


FASTAPI_APP = "from fastapi import FastAPI\n\napp = FastAPI()\n"


# --- the fixture project -------------------------------------------------------------------


def test_fixture_app_in_main_wins() -> None:
    found = detect_app([FIXTURES / "fastapi_app" / "src"])

    assert found == AppRef("webshop.main", "app", "asgi", "FastAPI")
    assert found.target == "webshop.main:app"


def test_fixture_decoy_would_win_if_tests_folder_were_scanned(tmp_path: Path) -> None:
    # Shows the tests/ decoy is a real competitor: renamed, it outranks webshop/main.py.
    root = copy_fixture("fastapi_app", tmp_path)
    (root / "src" / "tests").rename(root / "src" / "helpers")

    assert detect_app([root / "src"]) == AppRef("helpers.main", "app", "asgi", "FastAPI")


def test_fixture_starlette_attribute_style_found_without_main(tmp_path: Path) -> None:
    root = copy_fixture("fastapi_app", tmp_path)
    (root / "src" / "webshop" / "main.py").unlink()

    assert detect_app([root / "src"]) == AppRef("webshop.api.routing", "api", "asgi", "Starlette")


# --- frameworks and assignment shapes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from flask import Flask\napp = Flask(__name__)\n", AppRef("mod", "app", "wsgi", "Flask")),
        ("import bottle\napp = bottle.Bottle()\n", AppRef("mod", "app", "wsgi", "Bottle")),
        ("import falcon\napp = falcon.App()\n", AppRef("mod", "app", "wsgi", "App")),
        ("from quart import Quart\napp = Quart(__name__)\n", AppRef("mod", "app", "asgi", "Quart")),
        ("from litestar import Litestar\napp = Litestar([])\n",
         AppRef("mod", "app", "asgi", "Litestar")),
        ("from django.core.asgi import get_asgi_application\n"
         "application = get_asgi_application()\n",
         AppRef("mod", "application", "asgi", "get_asgi_application")),
        ("from django.core.wsgi import get_wsgi_application\n"
         "application = get_wsgi_application()\n",
         AppRef("mod", "application", "wsgi", "get_wsgi_application")),
        ("from fastapi import FastAPI\napp: FastAPI = FastAPI(title='x')\n",
         AppRef("mod", "app", "asgi", "FastAPI")),
        ("from starlette.applications import Starlette\nweb = app = Starlette()\n",
         AppRef("mod", "app", "asgi", "Starlette")),
    ],
)
def test_frameworks(tmp_path: Path, source: str, expected: AppRef) -> None:
    write(tmp_path, {"mod.py": source})

    assert detect_app([tmp_path]) == expected


@pytest.mark.parametrize(
    "source",
    [
        "class App:\n    pass\n\napp = App()\n",  # a generic App, not falcon's
        # built, not returned: not a factory
        "from fastapi import FastAPI\n\ndef create():\n    app = FastAPI()\n    return None\n",
        "from fastapi import FastAPI\nif True:\n    app = FastAPI()\n",
        "from fastapi import FastAPI\napp = FastAPI\n",  # the class, not an instance
        "from fastapi import FastAPI\napp, other = FastAPI(), FastAPI()\n",
        "from fastapi import FastAPI\napp: FastAPI\n",
        "import fastapi\napp = make_app(fastapi)\n",
        "",
    ],
)
def test_not_an_app(tmp_path: Path, source: str) -> None:
    write(tmp_path, {"mod.py": source})

    assert detect_app([tmp_path]) is None


# --- files that cannot be read are skipped ---------------------------------------------------


def test_syntax_error_file_is_skipped_without_crashing(tmp_path: Path) -> None:
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/broken.py": "from fastapi import FastAPI\napp = FastAPI(\n",
        "pkg/main.py": "from fastapi import FastAPI\nweb = FastAPI()\n",
    })

    assert detect_app([tmp_path]) == AppRef("pkg.main", "web", "asgi", "FastAPI")


def test_only_broken_files_give_none(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": "app = FastAPI(]\n", "app.py": "def (:\n  Flask()\n"})
    (tmp_path / "nul.py").write_bytes(b"from flask import Flask\napp = Flask(__name__)\x00\n")
    (tmp_path / "latin.py").write_bytes(b"# caf\xe9\nfrom flask import Flask\napp = Flask('x')\n")

    assert detect_app([tmp_path]) is None


def test_missing_source_root_gives_none(tmp_path: Path) -> None:
    assert detect_app([tmp_path / "src"]) is None
    assert detect_app([]) is None


# --- where apps are not looked for ------------------------------------------------------------


@pytest.mark.parametrize(
    "relative",
    [
        "tests/main.py",
        "pkg/tests/app.py",
        "test/app.py",
        "docs/app.py",
        "examples/app.py",
        "pkg/migrations/app.py",
        ".venv/lib/app.py",
        "venv/app.py",
        "my-venv/app.py",
        ".hidden/app.py",
        "test_app.py",
        "conftest.py",
        "setup.py",
        "my-scripts/app.py",  # not importable as a module
        "pkg/app-v2.py",
    ],
)
def test_skipped_locations(tmp_path: Path, relative: str) -> None:
    write(tmp_path, {relative: FASTAPI_APP})

    assert detect_app([tmp_path]) is None


# --- ranking --------------------------------------------------------------------------------


def test_attribute_named_app_beats_preferred_file_name(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": "from fastapi import FastAPI\napi = FastAPI()\n",
        "pkg/deep/routes.py": FASTAPI_APP,
    })

    assert detect_app([tmp_path]) == AppRef("pkg.deep.routes", "app", "asgi", "FastAPI")


def test_application_counts_as_named_app(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": "from fastapi import FastAPI\napi = FastAPI()\n",
        "pkg/wiring.py": "from flask import Flask\napplication = Flask('x')\n",
    })

    assert detect_app([tmp_path]) == AppRef("pkg.wiring", "application", "wsgi", "Flask")


def test_preferred_file_beats_shallower_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "routes.py": FASTAPI_APP,
        "pkg/server.py": FASTAPI_APP,
    })

    assert detect_app([tmp_path]) == AppRef("pkg.server", "app", "asgi", "FastAPI")


def test_shallower_file_beats_deeper(tmp_path: Path) -> None:
    write(tmp_path, {
        "a/b/main.py": FASTAPI_APP,
        "z/main.py": FASTAPI_APP,
    })

    assert detect_app([tmp_path]) == AppRef("z.main", "app", "asgi", "FastAPI")


def test_package_init_is_the_package_module(tmp_path: Path) -> None:
    write(tmp_path, {"webapp/__init__.py": FASTAPI_APP})

    assert detect_app([tmp_path]) == AppRef("webapp", "app", "asgi", "FastAPI")


def test_several_source_roots(tmp_path: Path) -> None:
    write(tmp_path, {
        "src/lib/util.py": "x = 1\n",
        "services/api/main.py": FASTAPI_APP,
    })

    found = detect_app([tmp_path / "src", tmp_path / "services"])

    assert found == AppRef("api.main", "app", "asgi", "FastAPI")


def test_app_ref_target() -> None:
    assert AppRef("pkg.mod", "app", "asgi", "FastAPI").target == "pkg.mod:app"


def test_an_application_factory_is_found_after_module_level_apps(tmp_path: Path) -> None:
    write(tmp_path, {"src/web/__init__.py": "",
                     "src/web/factory.py": "from flask import Flask\n\n\ndef create_app(config=None):\n"
                                           "    app = Flask(__name__)\n    return app\n\n\n"
                                           "def _helper():\n    return Flask('x')\n"})
    found = detect_app([tmp_path / "src"])
    assert found == AppRef("web.factory", "create_app", "wsgi", "Flask", factory=True)
    write(tmp_path, {"src/web/main.py": FASTAPI_APP})
    assert detect_app([tmp_path / "src"]) == AppRef("web.main", "app", "asgi", "FastAPI")


@pytest.mark.parametrize("folder", ["docs_src/app_testing", "examples", "tutorials/step1", "benchmarks"])
def test_the_apps_of_documentation_examples_and_benchmarks_are_not_the_projects(
        tmp_path: Path, folder: str) -> None:
    """fastapi, a library: its docs_src tutorial apps were taken for the app of its backend image."""
    write(tmp_path, {f"{folder}/main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
                     "lib/__init__.py": ""})
    assert detect_app([tmp_path]) is None
