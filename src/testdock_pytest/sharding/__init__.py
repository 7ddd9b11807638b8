"""Shards that finish together without running out of memory: the plan, and pytest's side."""
