"""xdist under a memory budget: `--dist memory`, `-n auto` from the budget, worker recovery."""
