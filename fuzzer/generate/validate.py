"""Validity checks: a generated graph must mean the same to ONNX, torch and its own specs."""

from __future__ import annotations

import onnx
import onnx.checker
import onnx.shape_inference
import torch

from fuzzer.core.dtypes import onnx_name, torch_name
from fuzzer.core.ir import Graph


def check_onnx(graph: Graph, model: onnx.ModelProto) -> list[str]:
    """Problems found by the full ONNX checker and by comparing inferred types with the specs'."""
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        return [f"onnx check: {str(error).strip().splitlines()[0]}"]
    found = {}
    for info in [*inferred.graph.value_info, *inferred.graph.output]:
        tensor = info.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        found[info.name] = (dims if tensor.HasField("shape") else None, onnx_name(tensor.elem_type))
    problems = []
    for node in graph.nodes:
        for name in node.outputs:
            expected = graph.types[name]
            if name not in found:
                problems.append(f"onnx shape inference gives no type for {name} ({node.op})")
                continue
            shape, dtype_name = found[name]
            if not _shape_agrees(shape, expected.shape) or dtype_name != expected.dtype:
                problems.append(
                    f"{node.op} output {name}: onnx infers {dtype_name}{list(shape or [])}, "
                    f"spec says {expected.dtype}{list(expected.shape)}"
                )
    return problems


def _shape_agrees(inferred: tuple[int | None, ...] | None, expected: tuple[int, ...]) -> bool:
    """ONNX inference may leave a shape or a dim unknown; only what it does infer must agree."""
    if inferred is None:
        return True
    return len(inferred) == len(expected) and all(i is None or i == e for i, e in zip(inferred, expected))


def check_torch(graph: Graph, tensors: dict[str, torch.Tensor]) -> list[str]:
    """Problems where torch's computed shapes or dtypes differ from the specs'."""
    producer = graph.producer()
    problems = []
    for name, expected in graph.types.items():
        if name not in tensors:
            continue
        actual = tensors[name]
        actual_dtype = torch_name(actual.dtype)
        if tuple(actual.shape) != expected.shape or actual_dtype != expected.dtype:
            op = producer[name].op if name in producer else "input"
            problems.append(
                f"{op} output {name}: torch gives {actual_dtype}{list(actual.shape)}, "
                f"spec says {expected.dtype}{list(expected.shape)}"
            )
    return problems
