from __future__ import annotations

import numpy as np
import torch

from fuzzer.inputs.sampling import Uncomparable, constant_outputs, fixed_outputs, uncomparable
from specs.interpret import evaluate
from tests.fuzzer.handmade import build, float32


def test_outputs_constant_by_construction_are_not_counted_as_poorly_chosen_values() -> None:
    graph = build(
        {"x": float32(4, 5)},
        [
            ("IsNaN", ["x"], {}),
            ("Relu", ["x"], {}),
            ("Range", [], {"start": 0, "count": 3, "delta": 1, "pullback": 0, "dtype": "int64"}),
        ],
    )
    assert fixed_outputs(graph) == {"t0", "t2"}
    negatives = {"x": -np.ones((4, 5), np.float32)}
    assert constant_outputs(graph, evaluate(graph, negatives)) == ["t1"]  # Relu of negatives: the values' fault
    assert constant_outputs(graph, evaluate(graph, {"x": np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)})) == []


def test_values_are_uncomparable_from_the_first_node_out_of_domain_or_nonfinite() -> None:
    mvn, mvn_op = {"axes": [1], "onnx_axes": [1]}, "MeanVarianceNormalization"
    graph = build({"x": float32(2, 3)}, [("MeanVarianceNormalization", ["x"], mvn), ("Relu", ["t0"], {})])
    spread = np.array([[1.0, 2.0, 4.0], [-3.0, 0.0, 5.0]], np.float32)
    assert uncomparable(graph, evaluate(graph, {"x": spread})) is None
    flat_row = np.array([[1.0, 1.0, 1.0], [-3.0, 0.0, 5.0]], np.float32)  # finite, yet a group without spread
    tensors = evaluate(graph, {"x": flat_row})
    assert bool(torch.isfinite(tensors["t1"]).all())
    assert uncomparable(graph, tensors) == Uncomparable("out_of_domain", 0, mvn_op)
    logged = build({"x": float32(2, 3)}, [("MeanVarianceNormalization", ["x"], mvn), ("Log", ["t0"], {})])
    assert uncomparable(logged, evaluate(logged, {"x": flat_row})) == Uncomparable("nonfinite", 0, mvn_op)
    assert uncomparable(logged, evaluate(logged, {"x": np.abs(spread)})) == Uncomparable("nonfinite", 1, "Log")
