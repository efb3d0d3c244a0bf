"""What every task of the pipeline passes to Prefect's ``@task``: storage is the only cache.

Each task looks its result up in the storage root, else builds it and saves it there (see
``storage/``); a nightly run on unchanged data finds every model and report and makes none. So
Prefect keeps no result cache of its own and persists no task result: nothing Prefect could load
back (a pickle that runs code, say) is written anywhere, and a wiped or replaced storage root is
never answered from a cache that points at what is gone. ``force`` (the CLI's ``--force``) is the
one way to redo a stored step: each task passes it to the storage call that would reuse it.
"""

from prefect.cache_policies import NO_CACHE

STORAGE_IS_THE_CACHE = {"cache_policy": NO_CACHE, "persist_result": False}

# Flows persist no result either; but a failed flow run's exception is written to Prefect's result
# storage whatever `persist_result` says (for the API's copy of its state), by default as a
# pickle: every flow writes it as JSON (the exception's type and message) instead. (A serializer
# alone would turn persistence on: Prefect persists the results of a flow that names one.)
FLOW_RESULTS_AS_JSON = {"result_serializer": "json", "persist_result": False}
