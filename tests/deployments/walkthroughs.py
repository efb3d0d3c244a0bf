"""Running a README block the way a terminal would: the block as written (ports and folders
changed) in ``bash -e``, SIGINT not ignored whatever launched the tests, optionally paused before
its last two lines (which stop what it started in the background) while tests use its services."""

import os
import re
import shlex
import signal
import time
from pathlib import Path

PROJECT = os.path.join(os.path.dirname(__file__), "..", "..")


def walkthrough() -> str:
    readme = open(os.path.join(PROJECT, "README.md")).read()
    section = readme[readme.index("The same by hand, on a"):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def terminal_shell(script: str) -> list[str]:
    return ["bash", "-e", "-c", script]


def like_a_terminal() -> None:
    """Whatever launched the tests, the block's shell starts as from a terminal: SIGINT not ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


PAUSED = "walkthrough paused before its last two lines"


def paused(script: str, resume) -> str:
    """A README block, waiting before its last two lines (which stop the worker, then everything
    else it started in the background) until a line is written to the FIFO ``resume``."""
    lines = script.rstrip("\n").split("\n")
    assert lines[-2].startswith("kill $worker") and lines[-1].endswith("; wait"), lines[-2:]
    return "\n".join([*lines[:-2], f"echo {shlex.quote(PAUSED)}", f"read -r _ < {shlex.quote(str(resume))}",
                      *lines[-2:]]) + "\n"


def proc_stat(pid: str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: state, parent, process group, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def left_running(group: int, wait_s: float = 15) -> list[str]:
    """The command lines of the processes still in process group ``group`` after up to ``wait_s``
    seconds (a service's own children may outlive it by a moment)."""
    deadline = time.monotonic() + wait_s
    while True:
        members = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if int(proc_stat(pid)[2]) == group:
                    members.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
            except (OSError, IndexError, ValueError):
                continue
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.5)


def resume(fifo, wait_s: float = 10) -> bool:
    """Let a block paused by :func:`paused` run its last two lines; False when it is not waiting
    at its pause within ``wait_s`` seconds (it failed before it got there): nothing blocks here."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:  # ENXIO: nobody reads the FIFO (yet: the block echoes, then opens it)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
    with os.fdopen(descriptor, "w") as line:
        line.write("go\n")
    return True
