"""Reading a project: its dependencies, pins, Python, tests, app, and its [tool.testdock] settings."""
