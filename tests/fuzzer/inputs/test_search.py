from __future__ import annotations

import numpy as np
import pytest
import torch

from fuzzer.core.ir import Graph
from fuzzer.inputs.sampling import first_nonfinite, random_values, sample_values
from fuzzer.inputs.search import SearchOptions, search_values
from specs import REGISTRY
from specs.elementwise import MARGIN
from specs.interpret import evaluate
from tests.fuzzer.handmade import build, float32


def assert_useful(graph: Graph, result) -> None:
    """Finite everywhere, some negative leaf values left, and outputs that are not one value."""
    assert result.finite and result.extra["in_domain"], graph.text()
    assert first_nonfinite(graph, evaluate(graph, result.values)) is None
    assert result.negative_share > 0.15, result.negative_share
    assert not result.constant_outputs


NEEDS_SEARCH = {
    "log after sub": build({"x": float32(6, 8)}, [("Sub", ["x", "w"], {}), ("Log", ["t0"], {})], {"w": float32(8)}),
    "div by a difference": build(
        {"x": float32(4, 8), "a": float32(8), "b": float32(4, 8)},
        [("Sub", ["a", "b"], {}), ("Div", ["x", "t0"], {})],
    ),
    "sqrt of a sub": build({"x": float32(5, 5), "y": float32(5, 5)}, [("Sub", ["x", "y"], {}), ("Sqrt", ["t0"], {})]),
    "log after matmul": build(
        {"x": float32(6, 4)}, [("MatMul", ["x", "w"], {}), ("Log", ["t0"], {})], {"w": float32(4, 5)}
    ),
    "exp overflow after matmul": build(
        {"x": float32(6, 8)}, [("MatMul", ["x", "w"], {}), ("Exp", ["t0"], {})], {"w": float32(8, 8)}
    ),
    "floor before log": build(
        {"x": float32(7, 7), "y": float32(7)}, [("Sub", ["x", "y"], {}), ("Floor", ["t0"], {}), ("Log", ["t1"], {})]
    ),
    "cast to int before reciprocal": build(
        {"x": float32(32), "y": float32(32)},
        [
            ("Mul", ["x", "y"], {}),
            ("Cast", ["t0"], {"to": "int64"}),
            ("Cast", ["t1"], {"to": "float32"}),
            ("Reciprocal", ["t2"], {}),
        ],
    ),
    "relu before log": build(
        {"x": float32(4, 6), "y": float32(4, 6)}, [("Add", ["x", "y"], {}), ("Relu", ["t0"], {}), ("Log", ["t1"], {})]
    ),
    "mod by a saturated hard sigmoid": build(
        {"x": float32(7, 1, 5), "y": float32(7, 1, 5)},
        [("HardSigmoid", ["x"], {"alpha": None, "beta": 0.25}), ("Mod", ["y", "t0"], {})],
    ),
    "div by a saturated relu": build(
        {"x": float32(6, 6), "y": float32(6, 6)}, [("Relu", ["x"], {}), ("Div", ["y", "t0"], {})]
    ),
    "reciprocal across its pole": build(
        {"x": float32(40), "y": float32(40)},
        [("Mul", ["x", "y"], {}), ("Reciprocal", ["t0"], {}), ("Sqrt", ["t1"], {})],
    ),
}


def test_graphs_built_to_need_the_search_fail_with_random_values() -> None:
    failing = 0
    for graph in NEEDS_SEARCH.values():
        failing += first_nonfinite(graph, evaluate(graph, random_values(graph, np.random.default_rng(0)))) is not None
    assert failing >= len(NEEDS_SEARCH) - 2  # a fair draw rarely keeps Floor/Cast clear of zero


@pytest.mark.parametrize("name", sorted(NEEDS_SEARCH))
def test_search_makes_values_finite_and_keeps_them_useful(name: str) -> None:
    graph = NEEDS_SEARCH[name]
    result = search_values(graph, seed=3)
    assert_useful(graph, result)
    assert result.method == "search" and result.first_bad_node is None


# Graphs whose every leaf must end up on one side of zero, or far from where it starts (seen in campaigns).
NEEDS_RESTARTS = {
    "acosh of a broadcast div": build(
        {"x": float32(6, 3, 6), "y": ((6, 6, 3, 1), "float32")}, [("Div", ["x", "y"], {}), ("Acosh", ["t0"], {})]
    ),
    "mod by the sqrt of a cast bool": build(  # Sqrt's slope at 0 is infinite
        {"b": ((6, 7, 3), "bool")},
        [("Cast", ["b"], {"to": "float64"}), ("Sqrt", ["t0"], {}), ("Mod", ["t0", "t1"], {})],
    ),
    "log of a floor of log log": build(
        {"x": float32(4)}, [("Log", ["x"], {}), ("Log", ["t0"], {}), ("Floor", ["t1"], {}), ("Log", ["t2"], {})]
    ),
}


@pytest.mark.parametrize("name", sorted(NEEDS_RESTARTS))
def test_search_reaches_values_gradients_alone_do_not(name: str) -> None:
    graph = NEEDS_RESTARTS[name]
    assert search_values(graph, seed=1).finite, graph.text()


def test_search_moves_only_the_elements_that_break_a_domain() -> None:
    graph = build({"x": float32(64)}, [("Log", ["x"], {})])
    start = random_values(graph, np.random.default_rng(5))["x"]
    found = search_values(graph, seed=5).values["x"]
    inside = start > 0.1 + MARGIN
    assert 10 < inside.sum() < 64
    np.testing.assert_array_equal(found[inside], start[inside])
    assert (found > 0.1).all()


def test_values_already_in_domain_are_returned_untouched_in_zero_steps() -> None:
    graph = build({"x": float32(3, 4), "y": float32(4)}, [("Add", ["x", "y"], {}), ("Tanh", ["t0"], {})])
    result = search_values(graph, seed=2)
    assert result.steps == 0 and result.finite
    for name, value in random_values(graph, np.random.default_rng(2)).items():
        np.testing.assert_array_equal(result.values[name], value)


def test_overflow_of_an_op_without_a_domain_pulls_its_inputs_down() -> None:
    half = ((1, 8192), "float16")
    graph = build(
        {"a": half, "b": ((8192, 1), "float16")},
        [("Exp", ["a"], {}), ("Exp", ["b"], {}), ("MatMul", ["t0", "t1"], {})],
    )
    assert sample_values(graph, seed=1, attempts=1).finite is False
    result = search_values(graph, seed=1)
    assert result.finite and result.steps > 0


def test_an_impossible_case_is_recorded_as_not_finite() -> None:
    graph = build({"x": float32(4)}, [("Exp", ["x"], {}), ("Neg", ["t0"], {}), ("Log", ["t1"], {})])
    result = search_values(graph, seed=0, options=SearchOptions(time_budget=0.05))
    assert not result.finite and not result.extra["in_domain"]
    assert result.first_bad_node == 2
    assert result.summary()["finite"] is False


def test_search_respects_its_step_budget() -> None:
    graph = build({"x": float32(4)}, [("Exp", ["x"], {}), ("Neg", ["t0"], {}), ("Log", ["t1"], {})])
    assert search_values(graph, seed=0, options=SearchOptions(max_steps=5)).steps <= 5


def test_search_is_deterministic_in_its_seed() -> None:
    graph = NEEDS_SEARCH["log after sub"]
    first, again = search_values(graph, seed=9), search_values(graph, seed=9)
    for name in graph.leaves:
        np.testing.assert_array_equal(first.values[name], again.values[name])


def test_integer_and_bool_leaves_keep_their_dtypes() -> None:
    graph = build(
        {"i": ((6,), "int64"), "c": ((6,), "bool"), "x": float32(6)},
        [("Cast", ["i"], {"to": "float32"}), ("Where", ["c", "t0", "x"], {}), ("Log", ["t1"], {})],
    )
    result = search_values(graph, seed=4)
    assert result.finite
    assert result.values["i"].dtype == np.int64 and result.values["c"].dtype == np.bool_


def test_bad_search_options_are_refused() -> None:
    with pytest.raises(ValueError, match="search options out of range"):
        SearchOptions(time_budget=0)


def test_a_lowering_that_breaks_under_autograd_is_searched_straight_through(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = build({"x": float32(16)}, [("Tanh", ["x"], {}), ("Log", ["t0"], {})])
    monkeypatch.setattr(REGISTRY["Tanh"], "to_torch", lambda self, x: torch.from_numpy(np.tanh(x.numpy())))
    result = search_values(graph, seed=1)
    assert result.method == "search" and result.finite
    assert (np.tanh(result.values["x"]) > 0).all()


def test_a_lowering_torch_cannot_differentiate_is_searched_through_not_abandoned() -> None:
    """nll_loss refuses requires_grad on its weight; the search must still move the other leaves."""
    nll = {"ignore_index": -1, "reduction": "none"}
    with pytest.raises(RuntimeError):  # the premise: torch refuses the weight's gradient
        REGISTRY["NegativeLogLikelihoodLoss"](nll).to_torch(
            torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64), torch.ones(3, requires_grad=True)
        ).sum().backward()
    graph = build(
        {"x": float32(2, 3), "target": ((2,), "int64"), "weight": float32(3)},
        [("NegativeLogLikelihoodLoss", ["x", "target", "weight"], nll), ("Log", ["t0"], {})],
    )
    for seed in range(4):
        result = search_values(graph, seed)
        assert result.finite and result.extra["in_domain"], (seed, result.summary())


REDUCE_ALL = {"axes": [0, 1, 2, 3], "onnx_axes": [0, 1, 2, 3], "keepdims": 0, "noop_with_empty_axes": 0}
REDUCE_ALL |= {"empty_axes_input": False}


def test_batch_norm_running_statistics_take_no_straight_through_gradient() -> None:
    """Seen: Cosh(ReduceL2(Relu(BatchNormalization(...)))) overflowed; torch refuses the running mean's and
    variance's gradient, the whole node was searched straight through, and shrinking the output pushed the
    variance negative (a NaN) on every step. With only the statistics detached, the scale shrinks it."""
    graph = build(
        {"x": float32(6, 4, 3, 3)},
        [
            ("BatchNormalization", ["x", "scale", "bias", "mean", "var"], {"epsilon": 1e-5}),
            ("ReduceSumSquare", ["t0"], REDUCE_ALL),
            ("Cosh", ["t1"], {}),
        ],
        {"scale": float32(4), "bias": float32(4), "mean": float32(4), "var": float32(4)},
    )
    for seed in range(3):
        result = search_values(graph, seed)
        assert result.finite and result.extra["in_domain"], (seed, result.summary())


def test_held_weights_keep_their_values_while_the_inputs_are_searched_into_the_domain() -> None:
    graph = build({"x": float32(16)}, [("Add", ["x", "w"], {}), ("Log", ["t0"], {})], {"w": float32(16)})
    held = {"w": np.linspace(-2, 2, 16).astype(np.float32)}
    result = search_values(graph, seed=3, held=held)
    assert result.finite and result.extra["in_domain"]
    np.testing.assert_array_equal(result.values["w"], held["w"])
    assert (result.values["x"] + held["w"] > 0).all()
    sampled = sample_values(graph, seed=3, held=held)
    np.testing.assert_array_equal(sampled.values["w"], held["w"])
