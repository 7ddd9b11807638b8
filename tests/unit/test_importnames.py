from testdock.project.modulenames import import_names


def test_import_names_cover_the_usual_and_the_known_differences() -> None:
    names = import_names(["numpy>=1.24", "PyYAML", "python-dateutil>=2.8", "scikit-learn",
                          "typing_extensions", "attrs", "psycopg[binary]>=3"])
    assert {"numpy", "yaml", "pyyaml", "dateutil", "python_dateutil", "sklearn", "typing_extensions",
            "attr", "attrs", "psycopg"} <= set(names)
    assert names == sorted(names)
    assert import_names([]) == []
