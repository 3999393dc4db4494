"""Cases from outside the generator: an ONNX file gets random finite inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from fuzzer.core.dtypes import onnx_name
from fuzzer.core.ir import Graph, TensorType
from fuzzer.core.testcase import CaseFormatError, TestCase
from fuzzer.inputs.sampling import random_tensor


def case_from_onnx(path: Path, seed: int = 0) -> TestCase:
    """A TestCase running the file as is; inputs are drawn at random from their declared types."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:
        raise CaseFormatError(f"{path}: not a valid ONNX model ({type(error).__name__}: {error})") from None
    initializers = {i.name for i in model.graph.initializer}
    types: dict[str, TensorType] = {}
    for info in [*model.graph.input, *model.graph.output]:
        tensor = info.type.tensor_type
        kind = onnx_name(tensor.elem_type)
        if kind is None:
            raise CaseFormatError(f"{path}: {info.name} has an element type dlfuzz cannot feed")
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor.shape.dim]
        types[info.name] = TensorType(tuple(dims), kind)
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    graph = Graph(inputs, [], [], [o.name for o in model.graph.output], types)
    rng = np.random.default_rng(seed)
    values = {name: random_tensor(types[name], rng) for name in inputs}
    return TestCase(graph, values, {"source": str(path)}, onnx=model.SerializeToString())
