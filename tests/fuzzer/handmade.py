"""Graphs written by hand, for tests that need a particular shape of problem."""

from __future__ import annotations

import numpy as np
import torch

from fuzzer.core.dtypes import dtype, torch_name
from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.core.testcase import TestCase
from specs.base import spec_of

Leaves = dict[str, tuple[tuple[int, ...], str]]
Step = tuple[str, list[str], dict]


def build(inputs: Leaves, steps: list[Step], weights: Leaves | None = None) -> Graph:
    """A graph written by hand: node i writes t{i}; types come from running the specs on zeros."""
    leaves = {**inputs, **(weights or {})}
    types = {name: TensorType(shape, kind) for name, (shape, kind) in leaves.items()}
    values = {name: torch.zeros(t.shape, dtype=dtype(t.dtype).torch) for name, t in types.items()}
    nodes = []
    for index, (op, names, attrs) in enumerate(steps):
        node = Node(op, names, [f"t{index}"], attrs)
        out = spec_of(node).to_torch(*(values[name] for name in names))
        values[node.outputs[0]] = out
        types[node.outputs[0]] = TensorType(tuple(out.shape), torch_name(out.dtype))
        nodes.append(node)
    consumed = {name for node in nodes for name in node.inputs}
    outputs = [node.outputs[0] for node in nodes if node.outputs[0] not in consumed]
    return Graph(list(inputs), list(weights or {}), nodes, outputs, types)


def float32(*shape: int) -> tuple[tuple[int, ...], str]:
    return shape, "float32"


def conv_matmul_case(seed: int = 0) -> TestCase:
    """Conv, Relu, MatMul, Add, Sigmoid: what ONNX Runtime fuses and lays out as NCHWc, TVM fuses and
    may convert to NHWC, and whose input height can shrink with the weights kept (a second shape)."""
    conv = {"auto_pad": "VALID", "strides": [1, 1], "dilations": [1, 1], "group": 1}
    steps = [
        ("Conv", ["x", "w"], conv),
        ("Relu", ["t0"], {}),
        ("MatMul", ["t1", "m"], {}),
        ("Add", ["t2", "b"], {}),
        ("Sigmoid", ["t3"], {}),
    ]
    graph = build({"x": float32(1, 2, 6, 6)}, steps, {"w": float32(3, 2, 3, 3), "m": float32(4, 5), "b": float32(5)})
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(-1, 1, graph.types[name].shape).astype(np.float32) for name in graph.leaves}
    return TestCase(graph, values, {"id": f"conv{seed}", "seed": seed})
