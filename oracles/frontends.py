"""The two ways a backend takes a case: as the ONNX model or as a torch module, both lowered from the specs."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch

from fuzzer.core.testcase import TestCase
from oracles.base import Backend
from specs.lowering import GraphModule, to_onnx


class OnnxBackend(Backend):
    """Backends that take the case's ONNX model."""

    frontend = "onnx"

    def convert(self, case: TestCase) -> Any:
        return onnx.load_from_string(case.onnx) if case.onnx else to_onnx(case.graph, case.weights)


class TorchBackend(Backend):
    """Backends that take the case as a torch.nn.Module built from the specs."""

    frontend = "torch"

    def setup(self) -> None:
        torch.set_num_threads(1)

    def version(self) -> str:
        return torch.__version__

    def unsupported(self, case: TestCase) -> str | None:
        return "the case is an ONNX file, not a dlfuzz graph" if case.onnx else None

    def convert(self, case: TestCase) -> GraphModule:
        return GraphModule(case.graph, case.weights).eval()

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        inputs = [torch.from_numpy(np.array(case.inputs[name])) for name in case.graph.inputs]
        with torch.no_grad():
            results = compiled(*inputs)
        return {name: r.detach().numpy().copy() for name, r in zip(case.graph.outputs, results)}
