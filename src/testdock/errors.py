"""The one error tree: only these messages reach users, as one line and an exit code."""

from __future__ import annotations


class TestdockError(Exception):
    """A failure testdock explains to the user in one line (exit code 1)."""

    __test__ = False  # not a pytest test class, despite the name
    exit_code = 1


class BadInput(TestdockError):
    """The user's input (a path, a file, a setting) is wrong; exit code 2."""

    exit_code = 2
