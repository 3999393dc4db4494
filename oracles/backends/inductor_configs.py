"""TorchInductor in configurations other than the default: Inductor config patches, a torch.compile
mode, dynamic shapes run on two shapes of the same graph, the backward pass, and AOTInductor."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch._inductor import aoti_compile_and_package, aoti_load_package

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import Gradients, SecondShape, as_arrays, case_leaves
from oracles.backends.pytorch import Inductor
from specs.lowering import GraphModule


class InductorFreezing(Inductor):
    """Weights folded into the graph as constants (freezing), as inference deployments compile."""

    name = "inductor-freezing"
    config: ClassVar[dict[str, Any]] = {"freezing": True}


class InductorCppWrapper(Inductor):
    """The generated C++ wrapper instead of the Python one around the kernels."""

    name = "inductor-cpp-wrapper"
    config: ClassVar[dict[str, Any]] = {"cpp_wrapper": True}


class InductorMaxAutotune(Inductor):
    """Autotuned kernel choices and coordinate-descent tuning, without CUDA graphs."""

    name = "inductor-max-autotune"
    mode = "max-autotune-no-cudagraphs"


class InductorDynamic(Inductor):
    """torch.compile(dynamic=True) with every input dim marked dynamic, compiled on a second, smaller
    shape of the graph (solved by the specs, weights kept) and then run on the drawn shape: the
    kernels are symbolic in the sizes, and both shapes are judged (the second one's outputs as
    `shape2:<output>`), so a bug that shows at one of the two sizes only is found."""

    name = "inductor-dynamic"
    dynamic = True
    readouts = (SecondShape.kind,)
    batchable = False


class InductorGrad(Inductor):
    """Forward and backward through torch.compile, the weights taken as arguments as a training step
    takes its parameters: AOTAutograd's joint graph split into Inductor's forward and backward kernels.
    The gradients of every float input and weight are judged as outputs (`grad:<leaf>`); a case
    without any (integer-only, or an op eager cannot differentiate) runs forward only."""

    name = "inductor-grad"
    readouts = (Gradients.kind,)
    batchable = False
    weights_as_arguments = True

    def compute(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        gradients = Gradients.of(case)
        if gradients is None:
            return super().compute(compiled, case)
        outputs, grads = gradients.forward_and_gradients(case_leaves(case), self.module_run(compiled, case))
        return as_arrays({**dict(zip(case.graph.outputs, outputs)), **grads})


class InductorAot(Inductor):
    """torch.export, then AOTInductor: the exported program compiled ahead of time into a C++ package
    (aoti_compile_and_package) and loaded back (aoti_load_package), as a deployment without Python
    runs it. Its stages: the exported program run by torch, then the package."""

    name = "inductor-aot"
    ahead_of_time = True

    def __init__(self) -> None:
        super().__init__()
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def stages(self, case: TestCase) -> tuple[str, ...]:
        return ("export", self.name)

    def build(self, converted: GraphModule, case: TestCase) -> Any:
        """The exported program (stage 1), or the AOTInductor package built from it and loaded back."""
        arguments = case_leaves(case)
        exported = torch.export.export(converted, tuple(arguments[name] for name in self.arguments(case)))
        if self.restriction.stages == 1:
            return exported.module()
        self._folder = tempfile.TemporaryDirectory(prefix="dlfuzz-aoti-")
        package = str(Path(self._folder.name) / "model.pt2")
        aoti_compile_and_package(exported, package_path=package, inductor_configs=dict(self.config))
        return aoti_load_package(package)

    def teardown(self) -> None:
        super().teardown()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
