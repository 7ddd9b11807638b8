"""Running the phases: a phase's image (or a local venv), the backend app and its services, stress."""
