"""The one way dlfuzz writes a file: whole or not at all, so a killed process or a full disk never
leaves half a file."""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the disk or the user's quota is full


def disk_full(error: BaseException) -> bool:
    """Whether an error means no space is left: the campaign stops and resumes later, never files it."""
    return isinstance(error, OSError) and error.errno in DISK_FULL


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: written to a temporary file beside it, flushed to disk, renamed;
    a write that fails (a full disk) leaves `path` as it was and no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays as the bytes of an .npz archive, for `write_atomic`."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line, flushed to disk. A write that fails (a full disk) is cut back off, and a
    kill leaves at most a cut-off last line, which readers drop."""
    data = memoryview((json.dumps(record, sort_keys=True) + "\n").encode())
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(descriptor).st_size
        try:
            while data:  # unbuffered, so nothing is left to write once the line is cut off
                data = data[os.write(descriptor, data) :]
            os.fsync(descriptor)
        except BaseException:
            os.ftruncate(descriptor, size)
            raise
    finally:
        os.close(descriptor)
