"""The cache policy of tasks whose result lives in the storage root (EDA reports, trained models).

Storage is the truth, Prefect's result cache a shortcut: a task gets a cache key only while its
result is in storage, so a wiped or replaced root never gets a cache hit pointing at something
that is gone. (The task itself also looks in storage first, for when Prefect's cache is empty.)
"""


def key_while_stored(stored: bool, *parts) -> str | None:
    return "-".join(str(part) for part in parts) if stored else None
