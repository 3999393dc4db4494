"""Shrink a failing case while it fails the same way: small named strategies, one short driving loop.

Only the affected backend and the references run (warm workers of an OracleSession); every
candidate must pass the validity checks first, and the result is re-checked end to end.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import z3

from fuzzer.core.dtypes import dtype
from fuzzer.core.ir import Graph, Node
from fuzzer.core.testcase import TestCase
from fuzzer.generate.symbolic import SymbolicGraph
from fuzzer.generate.validate import check_onnx, check_torch
from fuzzer.inputs.sampling import Uncomparable, case_uncomparable, leaf_bounds, uncomparable
from fuzzer.judge import judge_case
from fuzzer.judge.compare import Finding, Verdict
from fuzzer.triage.signature import signature
from oracles.backends.tvm_passes import PASSES
from oracles.base import PHASES, Outcome
from oracles.registry import REFERENCES
from oracles.session import OracleSession
from specs.interpret import evaluate
from specs.lowering import to_onnx


class BudgetSpent(Exception):
    """The reduction's time is up; the smallest case found so far stands."""


@dataclass(frozen=True)
class Failure:
    """What 'fails the same way' means: same backend and symptom (with a mismatch's readout kind) and,
    for a crash, same signature."""

    backend: str
    symptom: str
    signature: str | None
    phase: str | None = None  # where a crash happened: a candidate that gets past it is cured of it

    @classmethod
    def of(cls, finding: Finding, graph: Graph) -> Failure:
        crash_signature = None if finding.symptom == "mismatch" else signature(finding, graph)
        phase = finding.outcome.phase if finding.outcome and finding.symptom != "mismatch" else None
        return cls(finding.backend, finding.kind, crash_signature, phase)

    def passed(self, outcome: Outcome) -> bool:
        """Whether the backend got past this failure: ran, or crashed only in a later phase (another
        bug that the original one hid)."""
        if outcome.status == "ok":
            return True
        return self.phase in PHASES and outcome.phase in PHASES[PHASES.index(self.phase) + 1 :]

    def match(self, verdict: Verdict, graph: Graph) -> Finding | None:
        if verdict.kind == "invalid":
            return None
        for finding in verdict.findings:
            same = finding.backend == self.backend and finding.kind == self.symptom
            if same and (self.signature is None or signature(finding, graph) == self.signature):
                return finding
        return None


@dataclass
class Reduction:
    """A reduced case with the finding and outcomes of its final end-to-end check."""

    case: TestCase
    finding: Finding
    outcomes: dict[str, Outcome]
    original_nodes: int
    checks: int
    seconds: float
    complete: bool
    strategies: dict[str, int] = field(default_factory=dict)  # strategy -> times it shrank the case
    errors: list[str] = field(default_factory=list)  # strategies that failed (reducer bugs), skipped
    discarded: bool = False  # the reduced case passed its final re-check: the original is kept instead

    def summary(self) -> dict[str, Any]:
        return {
            "original_nodes": self.original_nodes,
            "nodes": len(self.case.graph.nodes),
            "checks": self.checks,
            "seconds": round(self.seconds, 2),
            "complete": self.complete,
            "strategies": self.strategies,
            "errors": self.errors,
            "discarded": self.discarded,
        }


class Checker:
    """Asks the backends whether a candidate still fails the same way; remembers every answer."""

    def __init__(self, session: OracleSession, failure: Failure, deadline: float) -> None:
        self.session = session
        self.failure = failure
        self.deadline = deadline
        self.only = [failure.backend, *(name for name in REFERENCES if name in session.infos)]
        self.answers: dict[str, bool] = {}

    @property
    def checks(self) -> int:
        return len(self.answers)

    def __call__(self, case: TestCase) -> bool:
        key = _fingerprint(case)
        if key not in self.answers:
            self._in_time()
            valid, why = self._values(case)
            wanted = valid and (why is None or self.failure.symptom != "mismatch")
            self.answers[key] = wanted and self._fails(case, why)
        return self.answers[key]

    def cures(self, case: TestCase) -> bool:
        """Whether a valid candidate with comparable values gets past the failure (the backend agrees with the
        references, or a crash gets past its phase): the change that made it names the trigger."""
        self._in_time()
        if self._values(case) != (True, None):
            return False
        outcomes, verdict = judge_case(self.session, case, None, self.only)
        backend = self.failure.backend
        if verdict.kind in ("invalid", "nonfinite") or not self.failure.passed(outcomes[backend]):
            return False
        return outcomes[backend].status != "ok" or not any(f.backend == backend for f in verdict.findings)

    def _in_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetSpent

    @staticmethod
    def _values(case: TestCase) -> tuple[bool, Uncomparable | None]:
        """Whether a candidate passes the validity checks, and if so why its outputs cannot be compared."""
        try:
            problems = check_onnx(case.graph, to_onnx(case.graph, case.weights))
            tensors = evaluate(case.graph, case.values)
        except Exception:  # a candidate a spec cannot lower is simply not a candidate
            return False, None
        problems += check_torch(case.graph, tensors)
        return (False, None) if problems else (True, uncomparable(case.graph, tensors))

    def _fails(self, case: TestCase, why: Uncomparable | None) -> bool:
        _, verdict = judge_case(self.session, case, why, self.only)
        return self.failure.match(verdict, case.graph) is not None


def _fingerprint(case: TestCase) -> str:
    """Graph, values and meta: a candidate may differ only in the configuration pinned there (passes)."""
    digest = hashlib.sha1(case.graph.dumps().encode() + json.dumps(case.meta, sort_keys=True, default=str).encode())
    for name in sorted(case.values):
        digest.update(name.encode() + np.ascontiguousarray(case.values[name]).tobytes())
    return digest.hexdigest()


Check = Callable[[TestCase], bool]
Strategy = Callable[[TestCase, Check], "TestCase | None"]


def prune(case: TestCase, nodes: list[Node], outputs: list[str], known: dict[str, torch.Tensor]) -> TestCase | None:
    """Drop nodes no output needs and leaves nobody reads; a value read but no longer computed
    becomes a graph input fed with its reference value from `known`."""
    graph = case.graph
    needed, live = set(outputs), []
    for node in reversed(nodes):
        if needed.intersection(node.outputs):
            live.append(node)
            needed.update(node.inputs)
    live.reverse()
    if not live:
        return None
    produced = {name for node in live for name in node.outputs}
    read = list(dict.fromkeys(name for node in live for name in node.inputs))
    cut = [name for name in read if name not in produced and name not in graph.leaves]
    inputs = [name for name in graph.inputs if name in needed] + cut
    weights = [name for name in graph.weights if name in needed]
    if not inputs:
        inputs, weights = weights[:1], weights[1:]
    values = {name: case.values[name] for name in graph.leaves if name in needed}
    values |= {name: known[name].numpy().copy() for name in cut}
    names = [*inputs, *weights, *(n for node in live for n in node.outputs)]
    types = {name: graph.types[name] for name in names}
    reduced = Graph(inputs, weights, live, [name for name in outputs if name in produced], types)
    return TestCase(reduced, values, dict(case.meta))


def cut_nodes(case: TestCase, removed: set[str], known: dict[str, torch.Tensor]) -> TestCase | None:
    """The case without the nodes whose first output is in `removed`; what survives and lost its
    last reader becomes an output."""
    graph = case.graph
    kept = [node for node in graph.nodes if node.outputs[0] not in removed]
    read_before = {name for node in graph.nodes for name in node.inputs}
    read_after = {name for node in kept for name in node.inputs}
    outputs = [
        name
        for node in kept
        for name in node.outputs
        if name in graph.outputs or (name in read_before and name not in read_after)
    ]
    return prune(case, kept, outputs, known)


def keep_one_output(case: TestCase, check: Check) -> TestCase | None:
    """A single output and only what computes it (the mismatching output is tried first)."""
    if len(case.graph.outputs) < 2:
        return None
    first = case.meta.get("failing_output")
    for name in sorted(case.graph.outputs, key=lambda n: n != first):
        candidate = prune(case, case.graph.nodes, [name], {})
        if candidate is not None and check(candidate):
            return candidate
    return None


def delta_debug_nodes(case: TestCase, check: Check) -> TestCase | None:
    """ddmin over nodes: remove ever smaller chunks, each cut fed with reference values."""
    known = evaluate(case.graph, case.values)

    def without(current: TestCase, positions: set[int]) -> TestCase | None:
        return cut_nodes(current, {current.graph.nodes[i].outputs[0] for i in positions}, known)

    return _delta_debug(case, lambda current: len(current.graph.nodes), without, check, least=1)


def drop_passes(case: TestCase, check: Check) -> TestCase | None:
    """ddmin over the pass list pinned in the case (DuoReduce's idea: the program and its pass
    sequence shrink together), so the report names the fewest passes that still fail."""
    if PASSES not in case.meta:
        return None

    def without(current: TestCase, positions: set[int]) -> TestCase:
        passes = [name for i, name in enumerate(current.meta[PASSES]) if i not in positions]
        return TestCase(current.graph, current.values, current.meta | {PASSES: passes})

    return _delta_debug(case, lambda current: len(current.meta[PASSES]), without, check, least=0)


def _delta_debug(
    case: TestCase,
    size: Callable[[TestCase], int],
    without: Callable[[TestCase, set[int]], TestCase | None],
    check: Check,
    least: int,
) -> TestCase | None:
    """ddmin's complement steps over the `size(case)` items of a case: drop ever smaller chunks of
    positions while the candidate `without` them still fails, keeping at least `least` items."""
    current, granularity = case, 2
    while size(current) > least:
        count = size(current)
        granularity = min(granularity, count)
        for chunk in _chunks(list(range(count)), granularity):
            candidate = without(current, set(chunk))
            if candidate is not None and size(candidate) >= least and check(candidate):
                current, granularity = candidate, max(granularity - 1, 2)
                break
        else:
            if granularity == count:
                break
            granularity = min(2 * granularity, count)
    return current if current is not case else None


def _chunks(items: list[int], count: int) -> Iterator[list[int]]:
    size = -(-len(items) // count)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def shrink_shapes(case: TestCase, check: Check) -> TestCase | None:
    """Leaf dims down to 1 (all at once, then one at a time, then halved), re-solved under the specs."""
    symbolic = SymbolicGraph(case.graph)
    types = case.graph.types
    dims = [((leaf, axis), size) for leaf in case.graph.leaves for axis, size in enumerate(types[leaf].shape)]
    tries = [dict.fromkeys((key for key, _ in dims), 1)]
    tries += [{key: cap} for key, size in dims if size > 1 for cap in ([1, size // 2] if size > 3 else [1])]
    caps: dict[tuple[str, int], int] = {}
    current = None
    for extra in tries:
        graph = symbolic.solve(caps | extra)
        if graph is None or graph.dumps() == (current or case).graph.dumps():
            continue
        candidate = resized(case, graph)
        if check(candidate):
            current, caps = candidate, caps | extra
    return current


def shrink_attributes(case: TestCase, check: Check) -> TestCase | None:
    """Simpler values for the attributes a spec fixes itself (strides to 1, perm to identity,
    flags off); solved attributes and shapes are re-solved to fit."""
    solved = SymbolicGraph(case.graph).solved
    current = case
    for index, node in enumerate(case.graph.nodes):
        for key, value in node.attrs.items():
            if key in solved[index]:
                continue
            for simpler in simpler_values(value):
                try:
                    graph = SymbolicGraph(current.graph, {index: {key: simpler}}, may_grow=True).solve()
                except (IndexError, KeyError, TypeError, ValueError, z3.Z3Exception):
                    continue  # a value the spec's rules cannot even be stated for
                if graph is not None and check(resized(current, graph)):
                    current = resized(current, graph)
                    break
    return current if current is not case else None


def simpler_values(value: Any) -> list[Any]:
    """Candidates a reader finds simpler than `value`: toward 0 and 1, identity orders, flags off."""
    if isinstance(value, bool):
        return [False] if value else []
    if isinstance(value, int):
        return [c for c in (0, 1) if abs(c) < abs(value)]
    if isinstance(value, float):
        return [1.0] if value not in (0.0, 1.0) else []
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [c for c in ([1] * len(value), sorted(value)) if c != value]
    return []


def resized(case: TestCase, graph: Graph) -> TestCase:
    """The case's leaf values cut down to the new graph's (no larger) shapes, ints kept in bounds."""
    values = {}
    bounds = leaf_bounds(graph)
    for name in graph.leaves:
        shape = graph.types[name].shape
        value = np.asarray(case.values[name])[tuple(slice(0, n) for n in shape)]
        if name in bounds:
            value = np.clip(value, *bounds[name])
        values[name] = np.array(value, dtype(graph.types[name].dtype).numpy)
    return TestCase(graph, values, dict(case.meta))


STRATEGIES: tuple[Strategy, ...] = (
    drop_passes,
    keep_one_output,
    delta_debug_nodes,
    shrink_shapes,
    shrink_attributes,
)


def pinned(case: TestCase, outcome: Outcome | None) -> TestCase:
    """The case with what its backend drew from the seed (Outcome.drawn) written into its meta: a
    reduced case, whose graph differs, then runs the same configuration, and the reducer can shrink it."""
    drawn = outcome.drawn if outcome is not None else {}
    return TestCase(case.graph, case.values, dict(case.meta) | drawn) if drawn else case


def reduce_case(session: OracleSession, case: TestCase, finding: Finding, budget: float) -> Reduction:
    """Shrink `case` within `budget` seconds while `finding` still shows; re-checked at the end."""
    start = time.monotonic()
    failure = Failure.of(finding, case.graph)
    check = Checker(session, failure, start + budget)
    output = finding.discrepancy.output if finding.discrepancy else None
    current = TestCase(case.graph, case.values, dict(case.meta) | {"failing_output": output})
    used: dict[str, int] = {}
    errors: list[str] = []
    complete = True
    try:
        progress = True
        while progress:
            progress = False
            for strategy in STRATEGIES:
                try:
                    smaller = strategy(current, check)
                except BudgetSpent:
                    raise
                except Exception as error:  # a reducer bug must not cost the campaign its finding
                    errors.append(f"{strategy.__name__}: {type(error).__name__}: {error}"[:300])
                    continue
                if smaller is not None:
                    current, progress = smaller, True
                    used[strategy.__name__] = used.get(strategy.__name__, 0) + 1
    except BudgetSpent:
        complete = False
    current.meta.pop("failing_output", None)
    outcomes, verdict = judge_case(session, current, case_uncomparable(current), check.only)
    final = failure.match(verdict, current.graph)
    discarded = final is None and current is not case
    if final is None:  # flaky: the reduced case stopped failing on the re-check; keep the original
        current, final, used = case, finding, {}
        outcomes, _ = judge_case(session, case, case_uncomparable(case), check.only)
    seconds = time.monotonic() - start
    return Reduction(
        current, final, outcomes, len(case.graph.nodes), check.checks, seconds, complete, used, errors, discarded
    )
