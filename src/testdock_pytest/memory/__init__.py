"""Per-test memory: the budget, the measurement, the history, leak confirmation."""
