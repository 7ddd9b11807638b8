"""shop: a tiny FastAPI + SQLAlchemy backend, the testdock demo project."""

__version__ = "0.1.0"
