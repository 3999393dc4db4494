"""The metamorphic oracle: a compiler run on the case and on an equivalent graph (specs/equivalences.py),
whose result there must equal its result on the original, even where every compiler agrees on that."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from fuzzer.core.testcase import TestCase
from oracles.base import Backend, Unsupported
from oracles.registry import METAMORPHIC, load_backend
from specs.equivalences import Rewrite, draw_rewrite, rewritten

T = TypeVar("T")
REWRITE = "rewrite"  # the case meta entry that pins the rewrite (Backend.drawn)


def chosen_rewrite(case: TestCase) -> Rewrite | None:
    """The case's pinned rewrite, else the one drawn from its seed; None for an ONNX file or a graph no
    equivalence applies to."""
    if case.onnx:
        return None
    if REWRITE in case.meta:
        return Rewrite.from_json(case.meta[REWRITE])
    return draw_rewrite(case.graph, int(case.meta.get("seed", 0)))


def equivalent_case(case: TestCase) -> TestCase | None:
    """The case with its rewrite applied (same inputs and output names), or None where there is none."""
    rewrite = chosen_rewrite(case)
    found = rewritten(case.graph, case.values, rewrite) if rewrite else None
    return TestCase(found[0], found[1], dict(case.meta)) if found else None


@dataclass
class Pair:
    """What the inner backend made of the original case and of its equivalent."""

    original: Any
    equivalent: Any
    case: TestCase  # the equivalent case


class Metamorphic(Backend):
    """`inner` (a backend reference) on the original and on the equivalent graph. A failure on the
    original is the plain backend's to report: here the case is unsupported, since there is nothing
    to compare with. Restrictions reach the inner compiler on both graphs."""

    inner_ref: ClassVar[str]
    frontend = "onnx"  # the inner backend's, once set up
    runs_per_case = 2
    batchable = False  # the rewrite is drawn per case

    def setup(self) -> None:
        self.inner = load_backend(self.inner_ref)[0]()
        self.inner.setup()
        self.frontend = self.inner.frontend
        self.compositions = self.inner.compositions

    def version(self) -> str:
        return self.inner.version()

    def unsupported(self, case: TestCase) -> str | None:
        if case.onnx:
            return "the case is an ONNX file: no graph to rewrite"
        equivalent = equivalent_case(case)
        if equivalent is None:
            pinned = case.meta.get(REWRITE)
            return f"the pinned rewrite {pinned} no longer applies" if pinned else "no equivalence applies to the graph"
        return self.inner.unsupported(case) or self.inner.unsupported(equivalent)

    def drawn(self, case: TestCase) -> dict[str, Any]:
        rewrite = chosen_rewrite(case)
        return {REWRITE: rewrite.to_json()} if rewrite else {}

    def stages(self, case: TestCase) -> tuple[str, ...]:
        return self.inner.stages(case)

    def switches(self, case: TestCase) -> tuple[str, ...]:
        return self.inner.switches(case)

    def convert(self, case: TestCase) -> Pair:
        equivalent = equivalent_case(case)
        assert equivalent is not None  # unsupported() said so first
        original = _on_original(lambda: self.inner.convert(case))
        return Pair(original, self.inner.convert(equivalent), equivalent)

    def compile(self, converted: Pair, case: TestCase) -> Pair:
        self.inner.restriction = self.restriction
        original = _on_original(lambda: self.inner.compile(converted.original, case))
        return Pair(original, self.inner.compile(converted.equivalent, converted.case), converted.case)

    def optimizations(self, compiled: Pair, case: TestCase) -> dict[str, int]:
        """What the inner compiler fired on the equivalent graph (its last compile)."""
        return self.inner.optimizations(compiled.equivalent, compiled.case)

    def run(self, compiled: Pair, case: TestCase) -> dict[str, np.ndarray]:
        return self.inner.run(compiled.equivalent, compiled.case)

    def baseline(self, compiled: Pair, case: TestCase) -> dict[str, np.ndarray]:
        return _on_original(lambda: self.inner.run(compiled.original, case))

    def compile_key(self, case: TestCase) -> str | None:
        """None: convert builds the equivalent case from the case's values, inputs included."""
        return None

    def teardown(self) -> None:
        self.inner.teardown()


def _on_original(step: Callable[[], T]) -> T:
    """A step on the original graph; its failure is the plain backend's finding, not this oracle's."""
    try:
        return step()
    except Unsupported:
        raise
    except Exception as error:
        raise Unsupported(f"fails on the original graph: {type(error).__name__}: {error}"[:500]) from None


class TvmMeta(Metamorphic):
    name = "tvm-meta"
    inner_ref = METAMORPHIC[name]


class OrtMeta(Metamorphic):
    name = "ort-meta"
    inner_ref = METAMORPHIC[name]


class InductorMeta(Metamorphic):
    name = "inductor-meta"
    inner_ref = METAMORPHIC[name]
