"""How many CPU cores this process may run on."""

import os


def available_cores() -> int:
    """The cores this process may use: its CPU affinity where the system has one (``taskset``, a
    container's cpuset, a test worker pinned to one core), else every core of the machine.
    ``os.cpu_count()`` counts the machine's, so threads sized by it can outnumber the cores a
    pinned process gets, and then wait on each other."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        return os.cpu_count() or 1
