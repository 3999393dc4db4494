"""A test case: a graph plus the values of its inputs and weights, saved as JSON and npz."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fuzzer.core.dtypes import dtype
from fuzzer.core.files import npz_bytes, write_atomic
from fuzzer.core.ir import Graph

CASE_FILE = "case.json"
VALUES_FILE = "values.npz"


def values_digest(values: Mapping[str, np.ndarray]) -> str:
    """Names, dtypes, shapes and bytes of some values: equal digests, the same values."""
    digest = hashlib.sha1()
    for name, value in sorted(values.items()):
        array = np.ascontiguousarray(value)
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class CaseFormatError(ValueError):
    """A case folder or file that cannot be read; the message says which and why."""


@dataclass
class TestCase:
    """What the oracles run: a concrete graph and one value per input and weight."""

    __test__ = False  # not a pytest class

    graph: Graph
    values: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    onnx: bytes | None = None  # set for a model read from a file rather than built from specs

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        return {name: self.values[name] for name in self.graph.inputs}

    @property
    def weights(self) -> dict[str, np.ndarray]:
        return {name: self.values[name] for name in self.graph.weights}

    def save(self, folder: Path) -> None:
        """Write case.json and values.npz; each file is replaced atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        document = {"graph": self.graph.to_json(), "meta": self.meta}
        write_atomic(folder / CASE_FILE, json.dumps(document, sort_keys=True, indent=1).encode())
        write_atomic(folder / VALUES_FILE, npz_bytes(self.values))

    @classmethod
    def load(cls, folder: Path) -> TestCase:
        case_file, values_file = folder / CASE_FILE, folder / VALUES_FILE
        if not case_file.is_file():
            raise CaseFormatError(f"{folder}: no {CASE_FILE} (not a dlfuzz case folder)")
        try:
            document = json.loads(case_file.read_text())
            graph = Graph.from_json(document["graph"])
            with np.load(values_file) as archive:
                values = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
            raise CaseFormatError(f"{folder}: unreadable case ({type(error).__name__}: {error})") from None
        missing = [n for n in graph.leaves if n not in values]
        if missing:
            raise CaseFormatError(f"{folder}: no values for {', '.join(missing)}")
        for name in graph.leaves:
            expected = graph.types[name]
            values[name] = np.asarray(values[name], dtype(expected.dtype).numpy)
            if values[name].shape != expected.shape:
                raise CaseFormatError(f"{folder}: value {name} has shape {values[name].shape}, not {expected.shape}")
        return cls(graph, values, dict(document.get("meta", {})))
