"""The one way dlfuzz writes a file: whole or not at all, so a killed process never leaves half a file."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: written to a temporary file beside it, flushed to disk, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays as the bytes of an .npz archive, for `write_atomic`."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line, flushed to disk: a crash leaves at most a cut-off last line to drop."""
    with open(path, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
