from __future__ import annotations

from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.generate.validate import check_onnx
from specs.lowering import to_onnx


def gather_nd_to_scalar(out_dtype: str) -> Graph:
    """GatherND picking one element: ONNX shape inference leaves the scalar's shape unknown."""
    types = {
        "x0": TensorType((2, 3), "float32"),
        "x1": TensorType((2,), "int64"),
        "t0": TensorType((), out_dtype),
    }
    node = Node("GatherND", ["x0", "x1"], ["t0"], {"batch_dims": 0, "tuple_length": 2})
    return Graph(["x0", "x1"], [], [node], ["t0"], types)


def test_a_shape_onnx_leaves_unknown_is_not_a_problem_but_a_wrong_type_is() -> None:
    graph = gather_nd_to_scalar("float32")
    assert check_onnx(graph, to_onnx(graph, {})) == []
    wrong = gather_nd_to_scalar("int64")
    (problem,) = check_onnx(wrong, to_onnx(wrong, {}))
    assert "GatherND" in problem and "differs" in problem
