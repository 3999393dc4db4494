"""Run one hand-built node through torch eager and unoptimized ONNX Runtime, for corner-case tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from fuzzer.dtypes import from_numpy
from fuzzer.ir import Graph, Node, TensorType
from fuzzer.materialize import to_onnx
from fuzzer.validate import check_onnx
from fuzzer.values import evaluate
from specs import REGISTRY, AbsTensor
from tests.specs.test_specs import run_ort_noopt


def single_node_graph(op: str, attrs: dict[str, Any], arrays: list[np.ndarray]) -> Graph:
    """A graph of one `op` node whose inputs are graph inputs shaped like `arrays`."""
    names = [f"x{i}" for i in range(len(arrays))]
    types = {name: TensorType(a.shape, from_numpy(a.dtype).name) for name, a in zip(names, arrays)}
    outputs = REGISTRY[op](attrs).infer([AbsTensor(list(t.shape), t.dtype) for t in types.values()])
    out_names = [f"t{i}" for i in range(len(outputs))]
    types |= {name: TensorType(tuple(out.shape), out.dtype) for name, out in zip(out_names, outputs)}
    return Graph(inputs=names, weights=[], nodes=[Node(op, names, out_names, attrs)], outputs=out_names, types=types)


def run_both(op: str, attrs: dict[str, Any], *arrays: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(torch eager outputs, ONNX Runtime outputs) of one node; the ONNX model must pass the checks."""
    graph = single_node_graph(op, attrs, list(arrays))
    model = to_onnx(graph, {})
    assert check_onnx(graph, model) == []
    feeds = dict(zip(graph.inputs, arrays))
    eager = evaluate(graph, feeds)
    ort = run_ort_noopt(model.SerializeToString(), feeds, graph.outputs)
    return [eager[name].numpy() for name in graph.outputs], [ort[name] for name in graph.outputs]
