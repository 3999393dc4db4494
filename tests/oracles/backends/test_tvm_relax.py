from __future__ import annotations

import numpy as np
import pytest
import tvm

from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.core.testcase import TestCase
from oracles.backends.tvm_passes import OPTIMIZING_PASSES
from oracles.backends.tvm_relax import TvmRelax, _kernel_op
from oracles.base import FULL, Restriction
from oracles.session import OracleSession
from tests.oracles.backends import graphs

SHAPE = {"start": None, "end": None}


def shape_case(outputs: int) -> TestCase:
    """x -> Shape (and Size): Relax returns the shape as a shape value, not a tensor."""
    nodes = [Node("Shape", ["x0"], ["t0"], SHAPE), Node("Size", ["x0"], ["t1"], {})][:outputs]
    types = {"x0": TensorType((2, 3), "float32"), "t0": TensorType((2,), "int64"), "t1": TensorType((), "int64")}
    graph = Graph(["x0"], [], nodes, [f"t{i}" for i in range(outputs)], types)
    return TestCase(graph, {"x0": np.zeros((2, 3), np.float32)})


@pytest.mark.parametrize("outputs", [1, 2])
def test_shape_outputs_come_back_as_int64_arrays(outputs: int) -> None:
    backend = TvmRelax()
    case = shape_case(outputs)
    result = backend.run(backend.compile(backend.convert(case), case), case)
    np.testing.assert_array_equal(result["t0"], np.array([2, 3], dtype=np.int64))
    assert result["t0"].dtype == np.int64
    if outputs == 2:
        assert result["t1"] == 6


def test_a_scalar_taken_from_a_shape_comes_back_as_an_int64_array() -> None:
    """Squeeze(Shape(x)) is an int64[] tensor in ONNX; Relax returns it as a plain int."""
    nodes = [Node("Shape", ["x0"], ["t0"], SHAPE), Node("Squeeze", ["t0"], ["t1"], {"axes": [0], "onnx_axes": [0]})]
    types = {"x0": TensorType((5,), "float32"), "t0": TensorType((1,), "int64"), "t1": TensorType((), "int64")}
    case = TestCase(Graph(["x0"], [], nodes, ["t1"], types), {"x0": np.zeros(5, np.float32)})
    backend = TvmRelax()
    result = backend.run(backend.compile(backend.convert(case), case), case)
    assert result["t1"].dtype == np.int64 and result["t1"].shape == () and result["t1"] == 5


def test_fusing_two_pointwise_ops_is_recorded(real_session: OracleSession) -> None:
    outcome = real_session.run(graphs.add_relu(), only=["tvm"])["tvm"]
    assert outcome.status == "ok"
    fired = outcome.optimizations
    assert fired["pass:FuseOps"] == fired["pass:FuseTIR"] == 1
    assert fired["fused_functions"] == fired["fused:elemwise"] == fired["fused_ops:add+relu"] == 1


def test_folding_a_decomposed_batch_normalization_is_recorded(real_session: OracleSession) -> None:
    fired = real_session.run(graphs.conv_batchnorm(), only=["tvm"])["tvm"].optimizations
    assert fired["pass:DecomposeOpsForInference"] == 1 and fired["pass:FoldConstant"] >= 1
    assert fired["fused:elemwise+out_ewise_fusable"] >= 1
    assert fired["fused_ops:conv2d+subtract+divide+multiply+add"] == 1, "the folded normalization joins the conv"


@pytest.mark.parametrize(
    ("kernel", "op"),
    [("add", "add"), ("add1", "add"), ("add12", "add"), ("conv2d", "conv2d"), ("max_pool2d", "max_pool2d")],
)
def test_a_kernel_reads_as_its_op_without_the_number_legalization_gave_a_repeat(kernel: str, op: str) -> None:
    assert _kernel_op(tvm.ir.GlobalVar(kernel)) == op


def test_one_op_is_legalized_and_nothing_else_fires(real_session: OracleSession) -> None:
    fired = real_session.run(graphs.relu(), only=["tvm"])["tvm"].optimizations
    assert fired == {"pass:LegalizeOps": 1, "pass:AnnotateTIROpPattern": 1}


def test_a_restriction_runs_fewer_of_our_passes_or_disables_one(real_session: OracleSession) -> None:
    case = graphs.add_relu()
    runs = {
        name: real_session.run(case, ["tvm"], {"tvm": restriction})["tvm"]
        for name, restriction in {
            "full": FULL,
            "build": Restriction(1),
            "no-fuse": Restriction(disabled=("FuseOps",)),
        }.items()
    }
    assert runs["full"].stages == ("tvm.compile", *OPTIMIZING_PASSES)
    assert all(outcome.status == "ok" for outcome in runs.values())
    assert "pass:FuseOps" in runs["full"].optimizations and runs["build"].optimizations == {}
    assert "pass:FuseOps" not in runs["no-fuse"].optimizations and "pass:LegalizeOps" in runs["no-fuse"].optimizations
