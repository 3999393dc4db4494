"""Inductor's configurations: dynamic shapes judged on both shapes, the backward pass, AOTInductor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import Gradients, SecondShape, case_leaves, interpreted
from oracles.backends.inductor_configs import InductorAot, InductorDynamic, InductorGrad
from oracles.backends.pytorch import Inductor
from specs.interpret import evaluate
from tests.fuzzer.handmade import build, conv_matmul_case
from tests.fuzzer.inputs.test_readouts import add_relu_matmul_case


def compiled_outputs(backend: Inductor, case: TestCase) -> dict[str, np.ndarray]:
    backend.setup()
    torch._dynamo.utils.counters.clear()  # what setup's warm-up compiled does not count
    try:
        return backend.run(backend.compile(backend.convert(case), case), case)
    finally:
        backend.teardown()


def test_one_compiled_graph_serves_both_shapes_and_both_are_right() -> None:
    case = conv_matmul_case()
    outputs = compiled_outputs(InductorDynamic(), case)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # no recompilation for the drawn shape
    expected = evaluate(case.graph, case.values)["t4"].numpy()
    np.testing.assert_allclose(outputs["t4"], expected, rtol=1e-4, atol=1e-5)
    second = SecondShape.of(case).read(case_leaves(case), interpreted(case.graph))["shape2:t4"].numpy()
    assert outputs["shape2:t4"].shape == second.shape != expected.shape
    np.testing.assert_allclose(outputs["shape2:t4"], second, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_the_backward_of_add_relu_matmul_matches_eager_autograd() -> None:
    case = add_relu_matmul_case()
    outputs = compiled_outputs(InductorGrad(), case)
    expected = Gradients.of(case).read(case_leaves(case), interpreted(case.graph))
    assert set(outputs) == {"t2", *expected}
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[name], value.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["t2"], evaluate(case.graph, case.values)["t2"].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_an_integer_only_graph_runs_forward_only() -> None:
    graph = build({"x": ((4,), "int64")}, [("Add", ["x", "x"], {})])
    case = TestCase(graph, {"x": np.arange(4, dtype=np.int64)})
    outputs = compiled_outputs(InductorGrad(), case)
    assert list(outputs) == ["t0"] and outputs["t0"].tolist() == [0, 2, 4, 6]


@pytest.mark.slow
def test_aot_inductor_runs_the_exported_package_and_its_export_stage() -> None:
    case = conv_matmul_case()
    expected = evaluate(case.graph, case.values)["t4"].numpy()
    np.testing.assert_allclose(compiled_outputs(InductorAot(), case)["t4"], expected, rtol=1e-4, atol=1e-5)
    backend = InductorAot()
    backend.restriction = type(backend.restriction)(stages=1)
    np.testing.assert_allclose(compiled_outputs(backend, case)["t4"], expected, rtol=1e-4, atol=1e-5)
