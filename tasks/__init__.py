"""Prefect tasks (thin wrappers that add retries, caching, logging and names) and, in
:mod:`mnist_pipeline.tasks.core`, the pure logic they call."""
