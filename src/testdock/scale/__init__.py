"""Past one machine: shards, CI pipelines, Kubernetes Jobs."""
