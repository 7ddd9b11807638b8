"""One parser and one formatter for memory sizes, used by settings, flags, reports and the plugin.

They live in the plugin (which must stand alone in the images) and are shared from there."""

from testdock_pytest.budget import format_size, parse_size

__all__ = ["format_size", "parse_size"]
