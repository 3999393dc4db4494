"""One property suite for every equivalence: the rewritten graph is valid and computes what the original does."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.generate.validate import check_onnx
from fuzzer.inputs.sampling import sample_values
from fuzzer.judge.compare import compare_outputs
from specs.equivalences import EQUIVALENCES, Rewrite, draw_rewrite, rewritten
from specs.interpret import evaluate
from specs.lowering import to_onnx
from tests.fuzzer.handmade import build

SEEDS = 40
SITES_PER_GRAPH = 2


@functools.cache
def cases() -> list[TestCase]:
    """Small generated graphs with sampled values, shared by every equivalence's test."""
    found = []
    for seed in range(SEEDS):
        graph = generate(seed, GenOptions(max_nodes=5))
        found.append(TestCase(graph, sample_values(graph, seed).values, {"seed": seed}))
    return found


def int_add_chain() -> TestCase:
    """(a + b) + c in int8, where wrapping makes the order matter to no one: the reassociation's site."""
    graph = build({"a": ((2, 3), "int8"), "b": ((3,), "int8"), "c": ((2, 1), "int8")}, [
        ("Add", ["a", "b"], {}),
        ("Add", ["t0", "c"], {}),
    ])  # fmt: skip
    rng = np.random.default_rng(0)
    values = {name: rng.integers(-128, 128, graph.types[name].shape).astype(np.int8) for name in graph.leaves}
    return TestCase(graph, values, {"seed": 0})


def assert_same_result(case: TestCase, rewrite: Rewrite) -> None:
    found = rewritten(case.graph, case.values, rewrite)
    assert found is not None, rewrite
    graph, values = found
    assert graph.outputs == case.graph.outputs and graph.inputs == case.graph.inputs
    assert check_onnx(graph, to_onnx(graph, {name: values[name] for name in graph.weights})) == [], graph.text()
    expected, actual = evaluate(case.graph, case.values), evaluate(graph, values)
    for name in case.graph.outputs:
        want, got = expected[name].numpy(), actual[name].numpy()
        assert (want.dtype, want.shape) == (got.dtype, got.shape), (rewrite, graph.text())
        if want.dtype.kind != "f":
            assert want.tobytes() == got.tobytes(), (rewrite, graph.text())
        else:  # eager may take another kernel for a strided view (Split's half): within rounding
            assert compare_outputs({name: want}, {name: got}) is None, (rewrite, graph.text())


@pytest.mark.parametrize("name", sorted(EQUIVALENCES))
def test_every_equivalence_keeps_the_result_of_the_graphs_it_applies_to(name: str) -> None:
    pool = [*cases(), int_add_chain()]
    applied = 0
    for case in pool:
        for site in EQUIVALENCES[name].sites(case.graph)[:SITES_PER_GRAPH]:
            assert_same_result(case, Rewrite(name, site))
            applied += 1
    assert applied >= 1, f"{name} applies to none of {len(pool)} graphs"


def test_float_detours_keep_every_bit_even_signed_zeros_and_nan() -> None:
    graph = build({"x": ((5,), "float32")}, [("Relu", ["x"], {})])
    special = np.array([-0.0, 0.0, np.nan, -np.inf, 3.5], np.float32)
    case = TestCase(graph, {"x": special}, {"seed": 0})
    for name in ("mul-one", "add-zero", "cast-round-trip", "concat-split", "reshape-round-trip"):
        for site in ("x", "t0"):
            found = rewritten(case.graph, case.values, Rewrite(name, site))
            assert found is not None
            assert evaluate(*found)["t0"].numpy().tobytes() == evaluate(graph, case.values)["t0"].numpy().tobytes()


def test_the_drawn_rewrite_follows_the_seed_and_seeds_draw_every_equivalence() -> None:
    graphs = [case.graph for case in cases()]
    draws = [draw_rewrite(graph, seed) for seed, graph in enumerate(graphs)]
    assert draws == [draw_rewrite(graph, seed) for seed, graph in enumerate(graphs)]
    drawn = {rewrite.equivalence for rewrite in draws if rewrite is not None}
    assert drawn >= set(EQUIVALENCES) - {"add-reassociate", "mul-commute", "add-commute"}, drawn


def test_a_rewrite_whose_site_is_gone_does_not_apply() -> None:
    case = int_add_chain()
    assert rewritten(case.graph, case.values, Rewrite("mul-one", "t7")) is None
    assert rewritten(case.graph, case.values, Rewrite("add-reassociate", "t0")) is None  # t0's inner is no Add
    assert rewritten(case.graph, case.values, Rewrite("no-such-identity", "t1")) is None
