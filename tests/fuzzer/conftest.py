"""Planted failures for triage tests: fast fake compilers that break on one op type or one trigger."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import sample_values
from oracles.session import OracleSession
from tests.fuzzer.handmade import build, float32

FAULTY = "tests.oracles.faulty_backends"
PLANTED_OPS = ("Sigmoid", "Add", "Relu", "Mul", "Neg", "Transpose", "ReduceSum", "Unsqueeze")


@pytest.fixture(scope="session")
def planted_session() -> Iterator[OracleSession]:
    """The two references plus a backend that crashes on Sigmoid and one that gets Sigmoid wrong."""
    backends = ["eager", "ort-noopt", f"{FAULTY}:CrashOnSigmoid", f"{FAULTY}:WrongOnSigmoid"]
    with OracleSession(backends, timeout=60) as session:
        yield session


def cases_with_sigmoid(count: int, min_nodes: int = 6) -> list[TestCase]:
    """Deterministic generated cases that hold a Sigmoid among several other nodes."""
    found = []
    options = GenOptions(max_nodes=9, ops=PLANTED_OPS)
    for seed in range(200):
        graph = generate(seed, options)
        if "Sigmoid" in graph.op_types() and len(graph.nodes) >= min_nodes:
            found.append(TestCase(graph, sample_values(graph, seed).values, {"id": f"{seed:06d}", "seed": seed}))
        if len(found) == count:
            return found
    raise AssertionError("the generator no longer makes graphs with Sigmoid")


NOOP = {"axes": [], "onnx_axes": [], "keepdims": 0, "noop_with_empty_axes": 1, "empty_axes_input": False}
LAYERNORM = {"axis": 0, "onnx_axis": 0, "epsilon": 1e-5, "exact_params": False}


def reduce_case(op: str, attrs: dict, kind: str = "float32") -> TestCase:
    """One Reduce* node over a 2x3 input of `kind`."""
    graph = build({"x": ((2, 3), kind)}, [(op, ["x"], attrs)])
    values = np.array([[0.5, -1.0, 2.0], [1.5, 3.0, -0.25]]).astype(kind)
    return TestCase(graph, {"x": values}, {"id": op, "seed": 0})


def layernorm_case(scale: tuple[int, ...], bias: tuple[int, ...]) -> TestCase:
    """LayerNormalization over all of a 2x3 input, with Scale and B of the given (broadcast) shapes."""
    graph = build(
        {"x": float32(2, 3)},
        [("LayerNormalization", ["x", "s", "b"], LAYERNORM)],
        {"s": float32(*scale), "b": float32(*bias)},
    )
    rng = np.random.default_rng(0)
    values = {name: rng.uniform(0.5, 2, graph.types[name].shape).astype(np.float32) for name in graph.leaves}
    return TestCase(graph, values, {"id": "layernorm", "seed": 0})


@pytest.fixture(scope="session")
def faulty_session() -> Iterator[OracleSession]:
    """The references and two planted defects that each show one face per op or shape."""
    backends = ["eager", "ort-noopt", f"{FAULTY}:ReduceFaults", f"{FAULTY}:LayerNormScaleCrash"]
    with OracleSession(backends, timeout=60) as session:
        yield session
