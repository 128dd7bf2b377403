"""Pipelines: the work itself, as importable functions that DAGs and tests call."""
