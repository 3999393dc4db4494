"""Triggers: what of a reduced failing node the failure needs, found by ablation, so that one defect
showing a different face per op or rank (another op of the family, another exception) is one bug.

An ablation changes one thing of the failing node toward the plain case (an attribute to a simpler
value or its default, secondary inputs to the full shape they broadcast to), re-solved under the
specs. It names a trigger when the candidate stays valid and the backend then agrees with the
references.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from fuzzer.core.ir import Graph, TensorType
from fuzzer.core.testcase import TestCase
from fuzzer.generate.symbolic import SymbolicGraph
from fuzzer.triage.reduce import BudgetSpent, Checker, resized, simpler_values

BROADCAST = "broadcast"  # the trigger of secondary inputs that broadcast to a larger shape


def find_triggers(case: TestCase, check: Checker) -> list[str]:
    """The sorted names of the ablations of the case's last node that cure its failure; empty when
    none does or the check's budget runs out (then the signature stays plain)."""
    found: set[str] = set()
    try:
        for name, candidate in ablations(case, check.deadline):
            if name not in found and check.cures(candidate):
                found.add(name)
    except BudgetSpent:
        return []
    return sorted(found)


def ablations(case: TestCase, deadline: float = math.inf) -> Iterator[tuple[str, TestCase]]:
    """(trigger name, candidate) for each plainer variant of the last node: attributes first, then
    the secondary inputs' broadcast; the reducer made that node the failing one. Each variant is
    re-solved under the specs, which takes Z3 up to seconds: none is past the `deadline`."""
    index = len(case.graph.nodes) - 1
    node = case.graph.nodes[index]
    solved = SymbolicGraph(case.graph).solved[index]
    for key in sorted(node.attrs):
        if key in solved:
            continue
        for plainer in plainer_values(node.attrs[key]):
            if time.monotonic() > deadline:
                raise BudgetSpent
            candidate = _resolved(case, case.graph, {index: {key: plainer}})
            if candidate is not None:
                yield key, candidate
    for candidate in broadcast_inputs(case, index):
        yield BROADCAST, candidate


def plainer_values(value: Any) -> list[Any]:
    """The reducer's simpler values, then the attribute left out (its ONNX default)."""
    return [*simpler_values(value), None] if value is not None else []


def broadcast_inputs(case: TestCase, index: int) -> Iterator[TestCase]:
    """The node's secondary leaf inputs expanded to the shape they broadcast to (same values), over
    ever more trailing dims of that shape: a spec may accept only some of those ranks."""
    graph = case.graph
    node = graph.nodes[index]
    shapes = [graph.types[name].shape for name in node.inputs]
    try:
        full = np.broadcast_shapes(*shapes)
    except ValueError:
        return
    secondary = [name for name in dict.fromkeys(node.inputs[1:]) if name in graph.leaves and name != node.inputs[0]]
    lowest = max((graph.types[name].rank for name in secondary), default=len(full))
    for rank in range(max(lowest, 1), len(full) + 1):
        types, values = dict(graph.types), dict(case.values)
        for name in secondary:
            shape = np.broadcast_shapes(graph.types[name].shape, full[len(full) - rank :])
            types[name] = TensorType(tuple(shape), graph.types[name].dtype)
            values[name] = np.broadcast_to(case.values[name], shape).copy()
        if types == graph.types:
            continue
        grown = Graph(list(graph.inputs), list(graph.weights), list(graph.nodes), list(graph.outputs), types)
        candidate = _resolved(TestCase(grown, values, dict(case.meta)), grown, {})
        if candidate is not None:
            yield candidate


def _resolved(case: TestCase, graph: Graph, overrides: dict[int, dict[str, Any]]) -> TestCase | None:
    """The case re-solved under the specs with `overrides`, or None where the specs reject it."""
    try:
        solved = SymbolicGraph(graph, overrides, may_grow=True).solve()
    except Exception:  # a value the spec's rules cannot be stated for is simply not a candidate
        return None
    return resized(case, solved) if solved is not None else None
