"""For targeted spec tests: one node on chosen values, checked and run by torch eager and ONNX Runtime."""

from __future__ import annotations

from typing import Any

import numpy as np

from fuzzer.dtypes import from_numpy
from fuzzer.ir import Graph, Node, TensorType
from fuzzer.materialize import to_onnx
from fuzzer.validate import check_onnx, check_torch
from fuzzer.values import evaluate
from specs import REGISTRY, AbsTensor
from tests.specs.test_specs import run_ort_noopt


def single_node_graph(op: str, attrs: dict[str, Any], inputs: list[np.ndarray]) -> Graph:
    """A graph of one `op` node over runtime inputs shaped like `inputs`, typed by the spec's infer."""
    names = [f"x{i}" for i in range(len(inputs))]
    types = {n: TensorType(a.shape, from_numpy(a.dtype).name) for n, a in zip(names, inputs)}
    outs = REGISTRY[op](attrs).infer([AbsTensor(list(t.shape), t.dtype) for t in types.values()])
    out_names = [f"t{i}" for i in range(len(outs))]
    types |= {n: TensorType(tuple(int(d) for d in t.shape), t.dtype) for n, t in zip(out_names, outs)}
    return Graph(inputs=names, weights=[], nodes=[Node(op, names, out_names, attrs)], outputs=out_names, types=types)


def eager_and_ort(op: str, attrs: dict[str, Any], *inputs: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Outputs of torch eager and of ONNX Runtime (no optimizations), after both validity checks."""
    graph = single_node_graph(op, attrs, list(inputs))
    values = dict(zip(graph.inputs, inputs))
    model = to_onnx(graph, {})
    assert check_onnx(graph, model) == [], graph.text()
    tensors = evaluate(graph, values)
    assert check_torch(graph, tensors) == [], graph.text()
    ort = run_ort_noopt(model.SerializeToString(), values, graph.outputs)
    return [tensors[n].numpy() for n in graph.outputs], [ort[n] for n in graph.outputs]
