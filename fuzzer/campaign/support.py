"""The support matrix: which op x dtype each backend runs, probed with single-op cases and cached."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer.core.files import write_atomic
from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import GenerationError, GenOptions, generate
from fuzzer.inputs.sampling import sample_values
from oracles.base import BackendInfo
from oracles.session import OracleSession, run_merged
from specs import REGISTRY

SUPPORTED, UNSUPPORTED, CRASHES = "supported", "unsupported", "crashes"
RARELY = 0.2  # draw weight of what a backend crashes on alone or lacks
GROUP_SIZE = 16
Progress = Callable[[int, int], None]


def dtype_key(dtypes: tuple[str, ...] | list[str]) -> str:
    """Support depends on which dtypes an op sees, not on its arity or their order."""
    return "+".join(sorted(set(dtypes)))


def probe_keys() -> list[tuple[str, str]]:
    """Every (op, dtype set) the generator can draw."""
    return sorted({(name, dtype_key(combo)) for name, cls in REGISTRY.items() for combo in cls.dtypes})


@dataclass
class SupportMatrix:
    """Per (op, dtype set), per backend: supported, unsupported or crashes."""

    versions: dict[str, str]
    entries: dict[str, dict[str, str]] = field(default_factory=dict)

    @staticmethod
    def key(op: str, dtypes: tuple[str, ...] | list[str]) -> str:
        return f"{op}|{dtype_key(dtypes)}"

    def status(self, op: str, dtypes: tuple[str, ...] | list[str], backend: str) -> str | None:
        return self.entries.get(self.key(op, dtypes), {}).get(backend)

    def draw_weight(self, op: str, dtypes: tuple[str, ...]) -> float:
        """The generator's weight: never what fewer than two backends of the campaign run (nothing to
        compare it with); rarely what one lacks (the others still compare it, but that one loses the
        whole graph) or crashes on alone (the bug is found on its first draws, and a crash hides the
        rest of its graph)."""
        statuses = list(self.entries.get(self.key(op, dtypes), {}).values())
        running = sum(status != UNSUPPORTED for status in statuses)
        if running < min(2, len(statuses)):
            return 0.0
        return RARELY if UNSUPPORTED in statuses or CRASHES in statuses else 1.0

    def to_json(self) -> dict[str, Any]:
        return {"versions": self.versions, "entries": self.entries}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SupportMatrix:
        return cls(dict(data["versions"]), {k: dict(v) for k, v in data["entries"].items()})


def cache_dir() -> Path:
    return Path(os.environ.get("DLFUZZ_CACHE", Path.home() / ".cache" / "dlfuzz"))


def cache_path(versions: dict[str, str], keys: list[tuple[str, str]]) -> Path:
    """One file per backend versions and spec set: a new compiler release or op is re-probed."""
    identity = json.dumps({"versions": versions, "keys": keys}, sort_keys=True)
    return cache_dir() / f"support-{hashlib.sha1(identity.encode()).hexdigest()[:16]}.json"


def cached_matrix(infos: dict[str, BackendInfo]) -> SupportMatrix | None:
    """The matrix cached for these backends' versions, if any (a damaged cache counts as none)."""
    path = cache_path({name: info.version for name, info in infos.items()}, probe_keys())
    if path.exists():
        try:
            return SupportMatrix.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError):
            pass
    return None


def load_or_probe(session: OracleSession, progress: Progress | None = None) -> SupportMatrix:
    """The cached matrix for these backend versions, probing (and caching) it if absent."""
    cached = cached_matrix(session.infos)
    if cached is not None:
        return cached
    keys = probe_keys()
    path = cache_path({name: info.version for name, info in session.infos.items()}, keys)
    matrix = probe(session, keys, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(matrix.to_json(), indent=1, sort_keys=True).encode())
    return matrix


def probe_case(op: str, key: str, seed: int = 0) -> TestCase:
    """A single-op case drawing exactly the dtype set `key`."""
    options = GenOptions(max_nodes=1, ops=(op,), dtypes=tuple(key.split("+")), reuse_probability=0.0)
    graph = generate(seed, options, lambda _, combo: dtype_key(combo) == key)
    return TestCase(graph, sample_values(graph, seed).values)


def probe(session: OracleSession, keys: list[tuple[str, str]], progress: Progress | None = None) -> SupportMatrix:
    """Group testing: run many single-op cases merged into one graph; split a group only on failure."""
    matrix = SupportMatrix({name: info.version for name, info in session.infos.items()})
    cases = {}
    for op, key in keys:
        try:
            cases[SupportMatrix.key(op, key.split("+"))] = probe_case(op, key)
        except GenerationError:
            continue  # never drawn in practice either; the generator treats it as allowed
        matrix.entries[SupportMatrix.key(op, key.split("+"))] = {}
    names = list(cases)
    total = len(names) * len(session.workers)
    for worker in session.workers.values():
        for start in range(0, len(names), GROUP_SIZE):
            group = names[start : start + GROUP_SIZE]
            for entry, outcome in zip(group, run_merged(worker, [cases[n] for n in group], GROUP_SIZE)):
                matrix.entries[entry][worker.name] = {"ok": SUPPORTED, "unsupported": UNSUPPORTED}.get(
                    outcome.status, CRASHES
                )
            if progress:
                progress(sum(len(v) for v in matrix.entries.values()), total)
    return matrix
