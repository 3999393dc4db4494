"""Hand-built one-node graphs, so a test can pin a corner the random property suite may not reach."""

from __future__ import annotations

from typing import Any

import numpy as np
import z3

from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.generate.validate import check_onnx, check_torch
from fuzzer.judge.compare import compare_outputs
from specs import AbsTensor, spec
from specs.interpret import evaluate
from specs.lowering import to_onnx
from tests.specs.test_specs import run_ort_noopt


def one_node_graph(op: str, attrs: dict[str, Any], inputs: list[np.ndarray]) -> Graph:
    """A graph applying `op` with concrete `attrs` to inputs shaped and typed like the arrays."""
    input_types = [TensorType(tuple(a.shape), a.dtype.name) for a in inputs]
    outputs = spec(op)(attrs).infer([AbsTensor(list(t.shape), t.dtype) for t in input_types])
    in_names = [f"x{i}" for i in range(len(inputs))]
    out_names = [f"t{i}" for i in range(len(outputs))]
    types = dict(zip(in_names, input_types))
    types |= {name: TensorType(tuple(int(d) for d in o.shape), o.dtype) for name, o in zip(out_names, outputs)}
    return Graph(
        inputs=in_names, weights=[], nodes=[Node(op, in_names, out_names, attrs)], outputs=out_names, types=types
    )


def requirements_hold(op: str, attrs: dict[str, Any], shapes: list[list[int]], dtype_name: str = "float32") -> bool:
    """Whether the spec accepts these concrete input shapes with these attrs."""
    instance = spec(op)(attrs)
    inputs = [AbsTensor(list(shape), dtype_name) for shape in shapes]
    solver = z3.Solver()
    for condition in instance.requires(inputs):
        if condition is False:
            return False
        if condition is not True:
            solver.add(condition)
    return solver.check() == z3.sat


def run_both(op: str, attrs: dict[str, Any], *inputs: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(torch eager outputs, ONNX Runtime outputs) of one node whose model and shapes pass the checks."""
    graph = one_node_graph(op, attrs, list(inputs))
    values = dict(zip(graph.inputs, inputs))
    model = to_onnx(graph, {})
    assert check_onnx(graph, model) == [], graph.text()
    tensors = evaluate(graph, values)
    assert check_torch(graph, tensors) == [], graph.text()
    actual = run_ort_noopt(model.SerializeToString(), values, graph.outputs)
    return [tensors[name].numpy() for name in graph.outputs], [actual[name] for name in graph.outputs]


def agreed_outputs(op: str, attrs: dict[str, Any], *inputs: np.ndarray) -> list[np.ndarray]:
    """The node's outputs, after asserting torch eager and ONNX Runtime without optimizations agree."""
    eager, ort = run_both(op, attrs, *inputs)
    for index, (want, got) in enumerate(zip(eager, ort)):
        assert compare_outputs({f"t{index}": want}, {f"t{index}": got}) is None, f"{op} {attrs}"
    return eager
