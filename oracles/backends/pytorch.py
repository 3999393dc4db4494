"""torch eager (the torch-side reference) and TorchInductor (torch.compile)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fuzzer.core.testcase import TestCase
from oracles.frontends import TorchBackend
from specs.lowering import GraphModule


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
