"""Prefect flows (wiring only), their configs, and the ``mnist`` command line."""
