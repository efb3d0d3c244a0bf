"""Prefect tasks (thin wrappers: look the result up in storage, else build and save it; retries,
logging, artifacts and names) and, in :mod:`mnist_pipeline.tasks.core`, the pure logic they call."""
