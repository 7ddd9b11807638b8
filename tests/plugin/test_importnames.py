"""The plugin's guesses of the modules a distribution provides (the collection image maps the real
run's distributions with them)."""

from __future__ import annotations

from testdock_pytest.collection.importnames import module_names


def test_module_names_follow_the_usual_spellings_and_the_known_exceptions() -> None:
    assert "yaml" in module_names("PyYAML") and "dateutil" in module_names("python-dateutil")
    assert "sklearn" in module_names("scikit_learn") and "PIL" in module_names("Pillow")
    assert "netCDF4" in module_names("netCDF4")  # imports are case-sensitive
    assert "zope" in module_names("zope.interface")
    assert "typing_extensions" in module_names("typing-extensions")
    assert {"bson", "gridfs"} <= module_names("pymongo") and "tree" in module_names("dm-tree")
