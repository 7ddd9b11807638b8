"""testdock's pytest plugin. It imports only the standard library and pytest: the test images
install it as its own wheel (testdock_pytest-*.whl, made by testdock), without testdock."""

__version__ = "0.2.0"
