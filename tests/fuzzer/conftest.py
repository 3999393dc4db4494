"""Planted failures for triage tests: fast fake compilers that break on one op type."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuzzer.generate import GenOptions, generate
from fuzzer.testcase import TestCase
from fuzzer.values import sample_values
from oracles.session import OracleSession

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
