"""The Prefect deployment definitions (prefect.yaml, the work pool's job template, automations),
shipped inside the package so that `mnist deploy` and `mnist up` work without a checkout."""
