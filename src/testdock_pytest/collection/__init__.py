"""Collection without the dependencies: import stubs, the guards they respect, the listing record."""
