"""Small hand-made graphs whose optimizations are known, as cases every backend can run."""

from __future__ import annotations

import numpy as np

from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from tests.fuzzer.handmade import build, float32

CONV = {"auto_pad": "NOTSET", "strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1], "group": 1}
CONV1D = {"auto_pad": "NOTSET", "strides": [1], "dilations": [1], "pads": [1, 1], "group": 1}


def case_of(graph: Graph) -> TestCase:
    """The graph with every input and weight drawn from (0.5, 2): finite through any of these ops."""
    rng = np.random.default_rng(0)
    values = {name: rng.uniform(0.5, 2, graph.types[name].shape).astype(np.float32) for name in graph.leaves}
    return TestCase(graph, values, {"id": "handmade", "seed": 0})


def relu() -> TestCase:
    """One op: nothing to fuse, fold or rewrite."""
    return case_of(build({"x": float32(2, 3)}, [("Relu", ["x"], {})]))


def add_relu() -> TestCase:
    """Two pointwise ops: one fused kernel."""
    return case_of(build({"x": float32(2, 3), "y": float32(2, 3)}, [("Add", ["x", "y"], {}), ("Relu", ["t0"], {})]))


def matmul_add() -> TestCase:
    """MatMul then a bias Add: Gemm in ONNX Runtime, addmm in Inductor."""
    steps = [("MatMul", ["x", "w"], {}), ("Add", ["t0", "c"], {})]
    return case_of(build({"x": float32(4, 3), "c": float32(5)}, steps, {"w": float32(3, 5)}))


def scaled_softmax() -> TestCase:
    """Softmax of a scaled tensor: Inductor's joint-graph mul_softmax_pattern, rooted at `sub` as others are."""
    steps = [("Mul", ["x", "s"], {}), ("Softmax", ["t0"], {"axis": 1, "onnx_axis": -1})]
    return case_of(build({"x": float32(2, 3)}, steps, {"s": float32(1)}))


def conv1d_relu() -> TestCase:
    """A 1-d Conv and Relu: ONNX Runtime's FusedConv (its NCHWc layout takes 2-d convolutions only)."""
    steps = [("Conv", ["x", "w"], CONV1D), ("Relu", ["t0"], {})]
    return case_of(build({"x": float32(1, 3, 8)}, steps, {"w": float32(4, 3, 3)}))


def conv_batchnorm() -> TestCase:
    """A 2-d Conv and an inference BatchNormalization, which ONNX Runtime folds into the Conv."""
    steps = [("Conv", ["x", "w"], CONV), ("BatchNormalization", ["t0", "s", "b", "m", "v"], {"epsilon": 1e-5})]
    weights = {"w": float32(4, 3, 3, 3), **{name: float32(4) for name in "sbmv"}}
    return case_of(build({"x": float32(1, 3, 8, 8)}, steps, weights))


def folded_weights() -> TestCase:
    """Two weights added before they meet the input: constant folding computes the sum once."""
    steps = [("Add", ["a", "b"], {}), ("Mul", ["x", "t0"], {})]
    return case_of(build({"x": float32(2, 3)}, steps, {"a": float32(2, 3), "b": float32(2, 3)}))
