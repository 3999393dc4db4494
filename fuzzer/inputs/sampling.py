"""Values for a graph's inputs and weights: random draws that respect integer index bounds."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from fuzzer.core.dtypes import dtype
from fuzzer.core.ir import Graph, TensorType
from fuzzer.core.testcase import TestCase
from specs.base import spec_of
from specs.interpret import evaluate
from specs.values import LEAF

FLOAT_RANGE = 3.0
INT_RANGE = 5


@dataclass
class ValueResult:
    """The values chosen for one graph and how they were found."""

    values: dict[str, np.ndarray]
    finite: bool
    method: str
    steps: int = 0
    seconds: float = 0.0
    first_bad_node: int | None = None
    constant_outputs: int = 0  # how many graph outputs hold a single value
    negative_share: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        data = {
            "method": self.method,
            "finite": self.finite,
            "steps": self.steps,
            "seconds": round(self.seconds, 4),
            "first_bad_node": self.first_bad_node,
            "constant_outputs": self.constant_outputs,
            "negative_share": round(self.negative_share, 3),
        }
        return data | self.extra


def leaf_bounds(graph: Graph) -> dict[str, tuple[int, int]]:
    """Integer ranges that specs demand of the leaves they read (indices, counts)."""
    bounds: dict[str, tuple[int, int]] = {}
    leaves = set(graph.leaves)
    for node in graph.nodes:
        spec = spec_of(node)
        types = [graph.types[name] for name in node.inputs]
        for position, name in enumerate(node.inputs):
            bound = spec.index_bounds(position, types) if name in leaves else None
            if bound is not None:
                low, high = bounds.get(name, bound)
                bounds[name] = (max(low, bound[0]), min(high, bound[1]))
    return bounds


def random_tensor(t: TensorType, rng: np.random.Generator, bounds: tuple[int, int] | None = None) -> np.ndarray:
    """A signed, wide draw: negatives, zeros and sign changes are where bugs live."""
    spec = dtype(t.dtype)
    if spec.is_bool:
        return np.asarray(rng.random(t.shape) < 0.5)
    if spec.is_int:
        low, high = bounds or ((0, INT_RANGE) if t.dtype == "uint8" else (-INT_RANGE, INT_RANGE))
        return rng.integers(low, high + 1, size=t.shape).astype(spec.numpy)
    return rng.uniform(-FLOAT_RANGE, FLOAT_RANGE, size=t.shape).astype(spec.numpy)


def random_values(graph: Graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    bounds = leaf_bounds(graph)
    return {name: random_tensor(graph.types[name], rng, bounds.get(name)) for name in graph.leaves}


def first_nonfinite(graph: Graph, tensors: dict[str, torch.Tensor]) -> int | None:
    """Index of the first node with a NaN or Inf output, or None if every value is finite."""
    for index, node in enumerate(graph.nodes):
        for name in node.outputs:
            value = tensors[name]
            if value.dtype.is_floating_point and not torch.isfinite(value).all():
                return index
    return None


def first_out_of_domain(graph: Graph, tensors: dict[str, torch.Tensor]) -> int | None:
    """Index of the first node whose inputs lie outside its op's numeric domain (a NaN loss counts), or None."""
    for index, node in enumerate(graph.nodes):
        loss = spec_of(node).domain_loss(*(tensors[name] for name in node.inputs))
        if loss is not None and not float(loss) <= 0:
            return index
    return None


@dataclass(frozen=True)
class Uncomparable:
    """Why a case's outputs cannot be compared: some value is non-finite, or all are finite but some
    lie outside an op's domain (a near-constant group normalized), where rounding alone decides the
    outputs and any two correct implementations may differ. `node` is where values first go wrong
    (out of domain or non-finite), the place to mend."""

    kind: Literal["nonfinite", "out_of_domain"]
    node: int
    op: str

    def reason(self) -> str:
        then = ", then non-finite" if self.kind == "nonfinite" else ""
        return f"values out of domain at node {self.node} ({self.op}){then}: outputs not compared, crashes only"


def uncomparable(graph: Graph, tensors: dict[str, torch.Tensor]) -> Uncomparable | None:
    """Why the graph's computed `tensors` make its outputs incomparable, or None when they are comparable."""
    nonfinite, outside = first_nonfinite(graph, tensors), first_out_of_domain(graph, tensors)
    if nonfinite is None and outside is None:
        return None
    first = min(index for index in (nonfinite, outside) if index is not None)
    return Uncomparable("out_of_domain" if nonfinite is None else "nonfinite", first, graph.nodes[first].op)


def case_uncomparable(case: TestCase) -> Uncomparable | None:
    """`uncomparable` of the values torch eager computes from the case's inputs and weights."""
    return uncomparable(case.graph, evaluate(case.graph, case.values))


def negative_share(graph: Graph, values: dict[str, np.ndarray]) -> float:
    """Share of negative elements among the float leaves: a narrow positive band hides sign bugs."""
    floats = [values[name] for name in graph.leaves if dtype(graph.types[name].dtype).is_float]
    total = sum(v.size for v in floats)
    return float(sum(int((v < 0).sum()) for v in floats) / total) if total else 0.0


def fixed_outputs(graph: Graph) -> set[str]:
    """Graph outputs that shapes and attributes alone decide (IsNaN of finite values, Dropout's mask,
    ConstantOfShape): constant by construction, not for want of better values."""
    values = {name: LEAF for name in graph.leaves}
    for node in graph.nodes:
        values.update(
            zip(node.outputs, spec_of(node).output_values([values[n] for n in node.inputs], len(node.outputs)))
        )
    return {name for name in graph.outputs if values[name].fixed}


def constant_outputs(graph: Graph, tensors: dict[str, torch.Tensor], fixed: Collection[str] | None = None) -> list[str]:
    """Graph outputs with several elements that hold one value everywhere (zeroed, saturated, all
    False) although input values could vary them; `fixed` is `fixed_outputs(graph)` when known."""
    fixed = fixed_outputs(graph) if fixed is None else fixed
    return [
        name
        for name in graph.outputs
        if name not in fixed
        and tensors[name].numel() > 1
        and bool((tensors[name] == tensors[name].reshape(-1)[0]).all())
    ]


def sample_values(
    graph: Graph,
    seed: int,
    attempts: int = 10,
    time_budget: float | None = None,
    held: Mapping[str, np.ndarray] | None = None,
) -> ValueResult:
    """Random draws, retried until every intermediate value is finite or attempts (or `time_budget`, CPU
    seconds of this thread, as the search counts them) run out; the leaves in `held` keep their values."""
    start, cpu_start = time.monotonic(), time.thread_time()
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    bad: int | None = None
    tensors: dict[str, torch.Tensor] = {}
    attempt = 0
    while attempt < attempts and (attempt == 0 or time_budget is None or time.thread_time() - cpu_start < time_budget):
        attempt += 1
        values = random_values(graph, rng) | dict(held or {})
        tensors = evaluate(graph, values)
        bad = first_nonfinite(graph, tensors)
        if bad is None:
            break
    return ValueResult(
        values,
        bad is None,
        "random",
        attempt,
        time.monotonic() - start,
        first_bad_node=bad,
        constant_outputs=len(constant_outputs(graph, tensors)) if bad is None else 0,
        negative_share=negative_share(graph, values),
    )
