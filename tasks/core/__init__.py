"""The pure core: decoding, downloading, splitting and validating digit data.

Nothing here imports Prefect or :mod:`mnist_pipeline.storage`; functions take and return in-memory objects,
so they are tested directly and reused by any orchestrator.
"""
