"""One property suite for every spec: ONNX validity, shapes from ONNX and torch, and agreement."""

from __future__ import annotations

import math
import random

import numpy as np
import onnxruntime
import pytest
import torch
import z3
from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

from fuzzer.core.ir import Graph
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.generate.validate import check_onnx, check_torch
from fuzzer.inputs.sampling import sample_values
from fuzzer.judge.compare import all_finite, compare_outputs
from specs import REGISTRY
from specs.base import AbsTensor, Symbols, spec_of
from specs.interpret import evaluate
from specs.lowering import to_onnx
from specs.values import Need, Values

SEEDS_PER_DTYPE_SET = 4


def run_ort_noopt(model_bytes: bytes, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return dict(zip(outputs, session.run(outputs, inputs)))


def outside_domain(graph: Graph, tensors: dict[str, torch.Tensor]) -> bool:
    """Whether any node's inputs violate its spec's numeric domain (near-ties, tiny variances, ...)."""
    for node in graph.nodes:
        loss = spec_of(node).domain_loss(*(tensors[name] for name in node.inputs))
        if loss is not None and float(loss) > 0:
            return True
    return False


def outside_declared_values(graph: Graph, tensors: dict[str, torch.Tensor]) -> list[str]:
    """Outputs holding values beyond the bounds their spec declares for unknown inputs."""
    wrong = []
    for node in graph.nodes:
        declared = spec_of(node).output_values([Values()] * len(node.inputs), len(node.outputs))
        for name, values in zip(node.outputs, declared):
            held = tensors[name].double()
            held = held[torch.isfinite(held)]
            if held.numel() and (held.min() < values.low - 1e-6 or held.max() > values.high + 1e-6):
                wrong.append(f"{name} of {node.op} in [{held.min():g}, {held.max():g}], declared {values}")
    return wrong


def dtype_sets(name: str) -> list[tuple[str, ...]]:
    """Each distinct set of dtypes the spec declares, so every declared dtype gets instances."""
    return sorted({tuple(sorted(set(combo))) for combo in REGISTRY[name].dtypes})


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_spec_lowerings_agree_with_onnx_and_torch(name: str) -> None:
    compared = 0
    for dtypes in dtype_sets(name):
        options = GenOptions(max_nodes=1, ops=(name,), dtypes=dtypes, reuse_probability=0.0)
        for seed in range(SEEDS_PER_DTYPE_SET):
            graph = generate(seed, options)
            assert [node.op for node in graph.nodes] == [name]
            values = sample_values(graph, seed)
            model = to_onnx(graph, {n: values.values[n] for n in graph.weights})
            assert check_onnx(graph, model) == [], graph.text()
            tensors = evaluate(graph, values.values)
            assert check_torch(graph, tensors) == [], graph.text()
            assert outside_declared_values(graph, tensors) == [], graph.text()
            inputs = {n: values.values[n] for n in graph.inputs}
            try:
                actual = run_ort_noopt(model.SerializeToString(), inputs, graph.outputs)
            except OrtNotImplemented:
                continue  # no kernel for this instance's dtypes (an attr may pick the output dtype)
            expected = {n: tensors[n].numpy() for n in graph.outputs}
            if not all_finite(expected) or outside_domain(graph, tensors):
                continue  # comparisons mean nothing there; the input search keeps campaigns out
            assert compare_outputs(expected, actual) is None, graph.text()
            compared += 1
    assert compared > 0, f"no instance of {name} could be compared with ONNX Runtime"


def _inside(need: Need, like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Values well inside the need: strictly between its bounds, away from zero where it says so."""
    u = torch.rand(like.shape, generator=gen, dtype=torch.float64)
    if need.nonzero:
        sign = torch.where(torch.rand(like.shape, generator=gen) < 0.5, -1.0, 1.0).double()
        magnitude = 1 + 2 * u if not like.dtype.is_floating_point else 0.5 + 1.5 * u
        return (
            (sign * magnitude).round().to(like.dtype)
            if not like.dtype.is_floating_point
            else (sign * magnitude).to(like.dtype)
        )
    low = need.low if math.isfinite(need.low) else -2.0
    high = need.high if math.isfinite(need.high) else max(low, 0.0) + 2.0
    if need.fractional:  # whole numbers in the bounds, each moved a quarter to three quarters up
        whole = torch.randint(math.ceil(low), math.floor(high), like.shape, generator=gen).double()
        return (whole + 0.25 + 0.5 * u).to(like.dtype)
    return (low + (high - low) * (0.1 + 0.8 * u)).to(like.dtype)


def _outside(need: Need, like: torch.Tensor) -> torch.Tensor:
    """Values the need rules out, everywhere in the tensor."""
    if need.nonzero or need.fractional:
        return torch.zeros_like(like)
    if math.isfinite(need.low):
        return torch.full_like(like, need.low - 1)
    return torch.full_like(like, need.high + 1)


@pytest.mark.parametrize("name", sorted(name for name, spec in REGISTRY.items() if spec.needs))
def test_values_inside_needs_are_in_domain_and_outside_are_not(name: str) -> None:
    """`needs` mirrors `domain_loss`: the generator plans with one, the search descends the other."""
    checked = 0
    for dtypes in dtype_sets(name):
        options = GenOptions(max_nodes=1, ops=(name,), dtypes=dtypes, reuse_probability=0.0)
        for seed in range(SEEDS_PER_DTYPE_SET):
            graph = generate(seed, options)
            (node,) = graph.nodes
            spec = spec_of(node)
            sampled = sample_values(graph, seed).values
            gen = torch.Generator().manual_seed(seed)
            base = [torch.from_numpy(np.array(sampled[n])) for n in node.inputs]
            dtype_of = [graph.types[name].dtype for name in node.inputs]
            needs = {p: need.at(dtype_of[p]) for p, need in spec.needs.items() if p < len(base)}
            inside = list(base)
            for position, need in needs.items():
                inside[position] = _inside(need, base[position], gen)
            loss = spec.domain_loss(*inside)
            assert loss is not None, name
            if not spec.joint_domain:
                assert float(loss) == 0, f"{graph.text()}\ninside: {inside}"
            for position, need in spec.drawn_needs().items():
                if position >= len(base):
                    continue
                outside = list(inside)
                outside[position] = _outside(need.at(dtype_of[position]), base[position])
                assert float(spec.domain_loss(*outside)) > 0, f"{graph.text()}\nposition {position} outside"
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_solved_declares_exactly_the_attributes_drawn_as_z3_ints(name: str) -> None:
    """The reducer re-solves `solved`; an undeclared Z3 attribute would stay symbolic, a stale one is a lie."""
    cls = REGISTRY[name]
    drawn: set[str] = set()
    for seed in range(24):
        ranks = cls.ranks[seed % len(cls.ranks)]
        matching = [d for d in cls.dtypes if len(d) == len(ranks)]
        dtypes = matching[seed % len(matching)]
        context = z3.Context()
        syms = Symbols(f"probe{seed}", context)
        inputs = [
            AbsTensor([syms.int(f"x{i}d{a}") for a in range(rank)], dtype)
            for i, (rank, dtype) in enumerate(zip(ranks, dtypes))
        ]
        for key, value in cls.sample_attrs(random.Random(seed), inputs, syms).items():
            items = value if isinstance(value, list) else [value]
            if items and all(isinstance(v, z3.ExprRef) for v in items):
                drawn.add(key)
    assert drawn == cls.solved


SUMS = [
    ("ReduceSum", {"axes": [1], "onnx_axes": [1], "keepdims": 0, "noop_with_empty_axes": 0, "empty_axes_input": False}),
    ("Einsum", {"equation": "ij->j"}),
    ("CumSum", {"axis": 1, "onnx_axis": 1, "axis_dtype": "int64", "exclusive": 0, "reverse": 1}),
    ("CumSum", {"axis": 1, "onnx_axis": 1, "axis_dtype": "int64", "exclusive": 1, "reverse": 0}),
]


@pytest.mark.parametrize(("name", "attrs"), SUMS)
def test_a_sum_of_elements_keeps_their_sign(name: str, attrs: dict[str, object]) -> None:
    """Seen: Sqrt(Einsum(LogSoftmax(x))) with one operand: a sum of values at most 0 is at most 0."""
    spec = REGISTRY[name](attrs)
    nonpositive, positive = Values(high=0), Values(low=0.5)
    (below,) = spec.output_values([nonpositive], 1)
    (above,) = spec.output_values([positive], 1)
    assert below.high <= 0 and not below.meets(REGISTRY["Sqrt"].needs[0])
    assert above.low >= 0 and not above.meets(Need(high=-0.5))
    x = 0.5 + torch.rand(3, 4, dtype=torch.float64)
    assert spec.to_torch(-x).max() <= below.high and spec.to_torch(x).min() >= above.low
