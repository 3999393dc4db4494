"""Readouts: gradients and a second shape, defined once for eager and compiled modules alike."""

from __future__ import annotations

import numpy as np
import torch

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import Gradients, SecondShape, case_leaves, interpreted, lifted, readouts_of
from fuzzer.judge.rounding import promote
from specs.lowering import GraphModule
from tests.fuzzer.handmade import build, conv_matmul_case, float32


def add_relu_matmul_case(seed: int = 0) -> TestCase:
    graph = build(
        {"x": float32(3, 4)},
        [("Add", ["x", "a"], {}), ("Relu", ["t0"], {}), ("MatMul", ["t1", "m"], {})],
        {"a": float32(3, 4), "m": float32(4, 2)},
    )
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(-1, 1, graph.types[name].shape).astype(np.float32) for name in graph.leaves}
    return TestCase(graph, values, {"seed": seed})


def test_the_second_shape_is_smaller_keeps_the_weights_and_runs_in_eager() -> None:
    case = conv_matmul_case()
    readout = SecondShape.of(case)
    (second,) = readout.inputs(case_leaves(case))
    height = second.shape[2]
    assert second.shape == (1, 2, height, 6) and 4 <= height < 6  # the MatMul weight pins the width; the
    # Conv output height (height - 2) stays at least 2, since torch specializes a size of 1
    np.testing.assert_array_equal(second.numpy(), case.inputs["x"][:, :, :height])
    outputs = readout.read(case_leaves(case), interpreted(case.graph))
    assert list(outputs) == ["shape2:t4"] and outputs["shape2:t4"].shape[2] == height - 2


def test_no_second_shape_where_the_weights_pin_every_input_dim() -> None:
    graph = build({"x": float32(2, 3)}, [("Add", ["x", "w"], {})], {"w": float32(2, 3)})
    case = TestCase(graph, {"x": np.ones((2, 3), np.float32), "w": np.ones((2, 3), np.float32)})
    assert SecondShape.of(case) is None and readouts_of(case, ["shape2"]) == []


def test_gradients_are_those_of_the_cotangent_weighted_sum_by_finite_differences() -> None:
    case = add_relu_matmul_case()
    readout = Gradients.of(case)
    assert readout.wrt == ["x", "a", "m"]
    wide = promote(case.graph)
    leaves = {name: torch.from_numpy(value.astype(np.float64)) for name, value in case.values.items()}
    grads = readout.read(leaves, interpreted(wide))
    (cotangent,) = readout.cotangents
    run = interpreted(wide)

    def loss(values: dict[str, torch.Tensor]) -> float:
        return float((run(values)[0] * cotangent.double()).sum())

    step = 1e-6
    for name in readout.wrt:
        for index in np.ndindex(case.values[name].shape):
            up, down = dict(leaves), dict(leaves)
            up[name], down[name] = leaves[name].clone(), leaves[name].clone()
            up[name][index] += step
            down[name][index] -= step
            numeric = (loss(up) - loss(down)) / (2 * step)
            assert abs(grads[f"grad:{name}"][index].item() - numeric) < 1e-5, (name, index)


def test_cotangents_come_from_the_case_seed() -> None:
    first, again, other = (Gradients.of(add_relu_matmul_case(seed)) for seed in (0, 0, 1))
    assert torch.equal(first.cotangents[0], again.cotangents[0])
    assert not torch.equal(first.cotangents[0], other.cotangents[0])


def test_a_module_taking_the_weights_as_arguments_gives_the_same_gradients() -> None:
    case = add_relu_matmul_case()
    readout = Gradients.of(case)
    graph = lifted(case.graph)
    module = GraphModule(graph, {})
    eager = readout.read(case_leaves(case), interpreted(case.graph))
    via_module = readout.read(case_leaves(case), lambda leaves: list(module(*(leaves[n] for n in graph.inputs))))
    assert eager.keys() == via_module.keys() == {"grad:x", "grad:a", "grad:m"}
    for name, value in eager.items():
        torch.testing.assert_close(via_module[name], value)


def test_a_leaf_reached_only_through_a_flat_op_gets_a_zero_gradient() -> None:
    graph = build({"x": float32(5)}, [("Floor", ["x"], {}), ("Mul", ["t0", "y"], {})], {"y": float32(5)})
    case = TestCase(graph, {"x": np.linspace(-2, 2, 5, dtype=np.float32), "y": np.ones(5, np.float32)})
    readout = Gradients.of(case)
    grads = readout.read(case_leaves(case), interpreted(graph))
    assert not grads["grad:x"].any()
    torch.testing.assert_close(grads["grad:y"], torch.floor(torch.from_numpy(case.values["x"])) * readout.cotangents[0])


def test_integer_only_graphs_have_no_gradients() -> None:
    graph = build({"x": ((4,), "int64")}, [("Add", ["x", "x"], {})])
    case = TestCase(graph, {"x": np.arange(4, dtype=np.int64)})
    assert Gradients.of(case) is None and readouts_of(case, ["grad"]) == []
