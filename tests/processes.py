"""The processes below a process, read from /proc: to prove that a killed dlfuzz leaves none behind."""

from __future__ import annotations

import time
from pathlib import Path


def descendants(root: int) -> dict[int, str]:
    """Every process below `root`, by pid, with its start time (so a reused pid is not taken for it)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields:
            pid = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            started[pid] = fields[19]
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = started[child]
            todo.append(child)
    return found


def running(pid: int, started: str) -> bool:
    """Whether the process is still there and not a zombie waiting to be reaped."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return bool(fields) and fields[19] == started and fields[0] != "Z"


def _stat_fields(path: Path) -> list[str]:
    """/proc/PID/stat after the command name (state, ppid, ...; the start time is the 20th), or [] once gone."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def survivors(tree: dict[int, str], seconds: float) -> list[int]:
    """The processes of `tree` still running after up to `seconds` of waiting for them to end."""
    deadline = time.monotonic() + seconds
    while any(running(pid, started) for pid, started in tree.items()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid, started in tree.items() if running(pid, started)]
