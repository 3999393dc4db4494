"""The backend interface and the Outcome every backend run ends in."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from fuzzer.core.testcase import TestCase, values_digest

PHASES = ("convert", "compile", "run")
Status = Literal["ok", "error", "timeout", "died", "unsupported"]


class Unsupported(Exception):
    """Raised by a backend that lacks an op or dtype: data for the support matrix, not a bug."""


@dataclass
class Outcome:
    """How one backend fared on one case: outputs, or where and how it failed."""

    status: Status
    outputs: dict[str, np.ndarray] | None = None
    phase: str | None = None
    exc_type: str | None = None
    message: str | None = None
    seconds: float = 0.0
    details: str = ""  # full traceback or worker log, kept for reports
    optimizations: dict[str, int] = field(default_factory=dict)  # what the compiler fired, by stable name
    phase_seconds: dict[str, float] = field(default_factory=dict)  # convert, compile, run: where its time went
    # What triage may take away to find the guilty configuration and pass (see Restriction).
    stages: tuple[str, ...] = ()
    switches: tuple[str, ...] = ()
    batch: int = 1  # cases compiled and run as one graph: each gets the run's optimizations, a share of its time
    reused: bool = False  # run on the graph compiled for the case before (another value set): no compile of its own
    # What the outputs must equal in place of the references' (a metamorphic oracle: the same compiler
    # on the original graph); None: judged against the references.
    baseline: dict[str, np.ndarray] | None = None
    drawn: dict[str, Any] = field(default_factory=dict)  # what the backend drew from the seed (Backend.drawn)

    @property
    def failed(self) -> bool:
        return self.status in ("error", "timeout", "died")

    def summary(self) -> dict[str, Any]:
        """The JSON-able part (no arrays) for stats lines and reports."""
        data: dict[str, Any] = {"status": self.status, "seconds": round(self.seconds, 4)}
        for key in ("phase", "exc_type", "message"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.batch > 1:
            data["batch"] = self.batch
        if self.optimizations:
            data["optimizations"] = dict(sorted(self.optimizations.items()))
        if self.phase_seconds:
            data["phase_seconds"] = {name: round(value, 4) for name, value in self.phase_seconds.items()}
        if self.drawn:
            data["drawn"] = self.drawn
        if self.reused:
            data["reused"] = True
        return data


@dataclass(frozen=True)
class Restriction:
    """Less of a compiler for one run, so triage can find what a failure needs: only the first
    `stages` of the backend's `stages` (None: all), and none of the `disabled` of its `switches`."""

    stages: int | None = None
    disabled: tuple[str, ...] = ()


FULL = Restriction()


class Backend(ABC):
    """A compiler or reference. Subclasses implement the three phases; the worker times them.

    `convert` turns a TestCase into the backend's input (ONNX model or torch module), `compile`
    builds something runnable, `run` executes it on the case's inputs and returns outputs by name.
    """

    name: ClassVar[str]
    frontend: ClassVar[Literal["onnx", "torch"]]
    reference: ClassVar[bool] = False
    # The kinds of readouts (fuzzer.inputs.readouts) its outputs carry beyond the graph's own; such a
    # backend is not batchable, since a merged run is split back into the graph's outputs alone.
    readouts: ClassVar[tuple[str, ...]] = ()
    # Whether compile keeps what `optimizations` reports; off only to measure what recording costs.
    record_optimizations: bool = True
    # Whether one compile may take several cases side by side (`--batch K`): not where a case's meta
    # steers the compile (a batch has one meta) or readouts ride on the outputs.
    batchable: ClassVar[bool] = True
    # Cases one compile takes side by side by default (see `dlfuzz bench batch`): more than 1 only
    # where a fixed compile cost dominates.
    batch_size: ClassVar[int] = 1
    # How much of the compiler the running case may use; the worker sets it per case.
    restriction: Restriction = FULL
    # Compiles and runs one case takes (a metamorphic oracle: the original and the equivalent graph);
    # the worker's time limit per case scales with it, so doing the work twice is no timeout.
    runs_per_case: ClassVar[int] = 1
    # Families of `optimizations` keys (`lost` of `lost:Relu`) that name what a compile fused or folded,
    # the graph's own op mix, rather than which optimization fired: coverage counts them apart.
    compositions: tuple[str, ...] = ()

    def setup(self) -> None:
        """Pay imports and warm-up once per worker, before the first case."""

    @abstractmethod
    def version(self) -> str: ...

    def unsupported(self, case: TestCase) -> str | None:
        """A reason this backend cannot take the case (an op or dtype it lacks), or None."""
        return None

    @abstractmethod
    def convert(self, case: TestCase) -> Any: ...

    @abstractmethod
    def compile(self, converted: Any, case: TestCase) -> Any: ...

    @abstractmethod
    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]: ...

    def optimizations(self, compiled: Any, case: TestCase) -> dict[str, int]:
        """Which optimizations the last compile fired, with counts, under names stable across runs
        (a campaign counts them as coverage); called right after compile and timed with it."""
        return {}

    def stages(self, case: TestCase) -> tuple[str, ...]:
        """The configurations (passes, levels, compile backends) this backend runs in order, each
        including those before it, so the first that shows a failure is the one that brings it in."""
        return ()

    def switches(self, case: TestCase) -> tuple[str, ...]:
        """The passes or optimizers a run can leave out one by one: those a failure needs are guilty."""
        return ()

    def baseline(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray] | None:
        """Outputs that `run`'s must equal instead of the references' (a metamorphic oracle runs the
        original graph here and the equivalent one in `run`), or None; called after `run`."""
        return None

    def drawn(self, case: TestCase) -> dict[str, Any]:
        """What this backend draws from the case's seed, as case meta entries it takes in place of the
        draw: pinned into a case before reduction, a smaller graph keeps the configuration, and the
        reducer can shrink it (a pass list)."""
        return {}

    def compile_key(self, case: TestCase) -> str | None:
        """A digest of all that `convert` and `compile` read from the case: a case with the key of the
        one before (another value set of its graph) runs on the graph the worker kept compiled. By
        default the graph, its weights (compilers fold them as constants), an ONNX file's bytes and
        what the backend drew; None, for a backend whose compile reads the inputs' values, compiles
        every case afresh."""
        parts = [case.graph.to_json(), values_digest(case.weights), self.drawn(case)]
        digest = hashlib.sha1(json.dumps(parts, sort_keys=True).encode())
        digest.update(case.onnx or b"")
        return digest.hexdigest()

    def teardown(self) -> None:
        """Drop per-case state (caches that grow with every compiled graph)."""


@dataclass
class BackendInfo:
    """What the campaign records about a backend: identity, not behaviour."""

    name: str
    frontend: str
    reference: bool
    version: str
    source: str
    batchable: bool = True
    batch_size: int = 1
    runs_per_case: int = 1
    readouts: tuple[str, ...] = ()
    compositions: tuple[str, ...] = ()
