"""inductor-dynamic: compiled once on a second, smaller shape, then run right on the drawn one."""

from __future__ import annotations

import numpy as np
import torch

from oracles.backends.inductor_configs import InductorDynamic, second_shape_inputs
from specs.interpret import evaluate
from specs.lowering import GraphModule
from tests.fuzzer.handmade import build, conv_matmul_case, float32


def test_the_second_shape_is_smaller_keeps_the_weights_and_runs_in_eager() -> None:
    case = conv_matmul_case()
    module = GraphModule(case.graph, case.weights).eval()
    (second,) = second_shape_inputs(module, case)
    height = second.shape[2]
    assert second.shape == (1, 2, height, 6) and 4 <= height < 6  # the MatMul weight pins the width; the
    # Conv output height (height - 2) stays at least 2, since torch specializes a size of 1
    np.testing.assert_array_equal(second.numpy(), case.inputs["x"][:, :, :height])


def test_no_second_shape_where_the_weights_pin_every_input_dim() -> None:
    graph = build({"x": float32(2, 3)}, [("Add", ["x", "w"], {})], {"w": float32(2, 3)})
    case = conv_matmul_case()
    case = type(case)(graph, {"x": np.ones((2, 3), np.float32), "w": np.ones((2, 3), np.float32)})
    assert second_shape_inputs(GraphModule(graph, case.weights), case) is None


def test_one_compiled_graph_serves_both_shapes_and_the_drawn_one_is_right() -> None:
    case = conv_matmul_case()
    backend = InductorDynamic()
    backend.setup()
    torch._dynamo.utils.counters.clear()
    try:
        outputs = backend.run(backend.compile(backend.convert(case), case), case)
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # no recompilation for the drawn shape
    finally:
        backend.teardown()
    expected = evaluate(case.graph, case.values)["t4"].numpy()
    np.testing.assert_allclose(outputs["t4"], expected, rtol=1e-4, atol=1e-5)
