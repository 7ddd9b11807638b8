"""testdock: lean Docker test images for Python projects, and pytest runs that never die of OOM."""

__version__ = "0.2.0"
