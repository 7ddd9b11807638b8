"""testdock's pytest plugin. It imports only the standard library: it is copied as is into the
test images (docker/testdock_pytest/), where testdock itself is not installed."""

__version__ = "0.1.0"
