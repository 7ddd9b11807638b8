"""Watching a running phase: memory samples, the tests running, the plot and the metrics."""
