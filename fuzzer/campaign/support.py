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


def cache_path(backend: str, version: str, keys: list[tuple[str, str]]) -> Path:
    """One file per backend, its version and the spec set: a new compiler release or op is re-probed,
    and a campaign that adds a backend probes only that one."""
    identity = json.dumps({"backend": backend, "version": version, "keys": keys}, sort_keys=True)
    return cache_dir() / f"support-{hashlib.sha1(identity.encode()).hexdigest()[:16]}.json"


def _cached_column(backend: str, version: str, keys: list[tuple[str, str]]) -> dict[str, str] | None:
    """One backend's cached statuses by entry (a damaged cache counts as none)."""
    path = cache_path(backend, version, keys)
    if path.exists():
        try:
            data = json.loads(path.read_text())
            return {str(entry): str(status) for entry, status in data["statuses"].items()}
        except (ValueError, KeyError, AttributeError):
            pass
    return None


def unprobed(infos: dict[str, BackendInfo]) -> list[str]:
    """The backends with no cached statuses for their version."""
    keys = probe_keys()
    return [name for name, info in infos.items() if _cached_column(name, info.version, keys) is None]


def cached_matrix(infos: dict[str, BackendInfo]) -> SupportMatrix | None:
    """The matrix cached for these backends' versions, if every one of them is cached."""
    keys = probe_keys()
    matrix = SupportMatrix({name: info.version for name, info in infos.items()})
    for name, info in infos.items():
        column = _cached_column(name, info.version, keys)
        if column is None:
            return None
        for entry, status in column.items():
            matrix.entries.setdefault(entry, {})[name] = status
    return matrix


def load_or_probe(session: OracleSession, progress: Progress | None = None) -> SupportMatrix:
    """The cached matrix for these backend versions, probing (and caching) the backends not cached."""
    keys = probe_keys()
    missing = unprobed(session.infos)
    if missing:
        probed = probe(session, keys, progress, only=missing)
        for name in missing:
            column = {entry: statuses[name] for entry, statuses in probed.entries.items() if name in statuses}
            path = cache_path(name, session.infos[name].version, keys)
            path.parent.mkdir(parents=True, exist_ok=True)
            document = {"backend": name, "version": session.infos[name].version, "statuses": column}
            write_atomic(path, json.dumps(document, indent=1, sort_keys=True).encode())
    matrix = cached_matrix(session.infos)
    assert matrix is not None, "every backend's statuses were just cached"
    return matrix


def probe_case(op: str, key: str, seed: int = 0) -> TestCase:
    """A single-op case drawing exactly the dtype set `key`."""
    options = GenOptions(max_nodes=1, ops=(op,), dtypes=tuple(key.split("+")), reuse_probability=0.0)
    graph = generate(seed, options, lambda _, combo: dtype_key(combo) == key)
    return TestCase(graph, sample_values(graph, seed).values)


def probe(
    session: OracleSession,
    keys: list[tuple[str, str]],
    progress: Progress | None = None,
    only: list[str] | None = None,
) -> SupportMatrix:
    """Group testing: run many single-op cases merged into one graph; split a group only on failure."""
    workers = [worker for worker in session.workers.values() if only is None or worker.name in only]
    matrix = SupportMatrix({worker.name: session.infos[worker.name].version for worker in workers})
    cases = {}
    for op, key in keys:
        try:
            cases[SupportMatrix.key(op, key.split("+"))] = probe_case(op, key)
        except GenerationError:
            continue  # never drawn in practice either; the generator treats it as allowed
        matrix.entries[SupportMatrix.key(op, key.split("+"))] = {}
    names = list(cases)
    total = len(names) * len(workers)
    for worker in workers:
        for start in range(0, len(names), GROUP_SIZE):
            group = names[start : start + GROUP_SIZE]
            for entry, outcome in zip(group, run_merged(worker, [cases[n] for n in group], GROUP_SIZE)):
                matrix.entries[entry][worker.name] = {"ok": SUPPORTED, "unsupported": UNSUPPORTED}.get(
                    outcome.status, CRASHES
                )
            if progress:
                progress(sum(len(v) for v in matrix.entries.values()), total)
    return matrix
