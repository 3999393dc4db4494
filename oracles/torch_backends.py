"""torch eager (the torch-side reference) and TorchInductor (torch.compile)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fuzzer.materialize import GraphModule
from fuzzer.testcase import TestCase
from oracles.base import Backend


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


class Eager(TorchBackend):
    name = "eager"
    reference = True

    def compile(self, converted: GraphModule, case: TestCase) -> GraphModule:
        return converted


class Inductor(TorchBackend):
    name = "inductor"

    def setup(self) -> None:
        super().setup()
        warm = torch.compile(lambda x: torch.relu(x) + 1, backend="inductor", fullgraph=True, dynamic=False)
        warm(torch.ones(2))
        torch._dynamo.reset()

    def compile(self, converted: GraphModule, case: TestCase) -> Any:
        compiled = torch.compile(converted, backend="inductor", fullgraph=True, dynamic=False)
        inputs = [torch.from_numpy(np.array(case.inputs[name])) for name in case.graph.inputs]
        with torch.no_grad():
            compiled(*inputs)  # torch.compile is lazy: the first call is the compilation
        return compiled

    def teardown(self) -> None:
        torch._dynamo.reset()
