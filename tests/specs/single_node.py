"""One spec instance with hand-picked attrs on concrete inputs, run by torch eager and ONNX Runtime."""

from __future__ import annotations

from typing import Any

import numpy as np
import z3

from fuzzer.dtypes import from_numpy
from fuzzer.ir import Graph, Node, TensorType
from fuzzer.materialize import to_onnx
from fuzzer.validate import check_onnx
from fuzzer.values import evaluate
from specs import spec
from specs.base import AbsTensor
from tests.specs.test_specs import run_ort_noopt


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


def run_both(op: str, attrs: dict[str, Any], arrays: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(torch eager outputs, ONNX Runtime outputs) of one node; the ONNX model must pass the checks."""
    names = [f"x{i}" for i in range(len(arrays))]
    types = {n: TensorType(a.shape, from_numpy(a.dtype).name) for n, a in zip(names, arrays)}
    inferred = spec(op)(attrs).infer([AbsTensor(list(a.shape), types[n].dtype) for n, a in zip(names, arrays)])
    outputs = [f"t{i}" for i in range(len(inferred))]
    types |= {n: TensorType(tuple(int(d) for d in t.shape), t.dtype) for n, t in zip(outputs, inferred)}
    graph = Graph(inputs=names, weights=[], nodes=[Node(op, names, outputs, attrs)], outputs=outputs, types=types)
    model = to_onnx(graph, {})
    assert check_onnx(graph, model) == [], graph.text()
    values = dict(zip(names, arrays))
    eager = evaluate(graph, values)
    ort = run_ort_noopt(model.SerializeToString(), values, outputs)
    return [eager[n].numpy() for n in outputs], [ort[n] for n in outputs]
