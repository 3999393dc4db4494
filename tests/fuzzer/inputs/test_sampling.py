from __future__ import annotations

import numpy as np

from fuzzer.inputs.sampling import constant_outputs, fixed_outputs
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
