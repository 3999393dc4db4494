"""Apache TVM (Relax): ONNX frontend, an explicit optimizing pass pipeline, LLVM codegen, VM."""

from __future__ import annotations

from typing import Any

import numpy as np
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx

from fuzzer.core.testcase import TestCase
from oracles.backends.tvm_passes import PASS_ARGUMENTS, PASS_LISTS, case_seed
from oracles.base import Unsupported
from oracles.frontends import OnnxBackend


class TvmRelax(OnnxBackend):
    name = "tvm"

    def version(self) -> str:
        return tvm.__version__

    def convert(self, case: TestCase) -> tvm.IRModule:
        try:
            return from_onnx(super().convert(case), keep_params_in_input=False)
        except tvm.error.OpNotImplemented as error:
            raise Unsupported(str(error)) from None

    def pass_names(self, case: TestCase) -> tuple[str, ...]:
        """The Relax passes run before tvm.compile, in order."""
        return PASS_LISTS[self.name](case)

    def compile(self, converted: tvm.IRModule, case: TestCase) -> relax.VirtualMachine:
        with tvm.transform.PassContext(opt_level=3):
            optimized = converted
            for name in self.pass_names(case):
                try:
                    optimized = getattr(relax.transform, name)(*PASS_ARGUMENTS.get(name, ()))(optimized)
                except Exception as error:
                    error.add_note(f"relax pass: {name}")  # triage names the failing pass
                    raise
            executable = tvm.compile(optimized, target="llvm")
        return relax.VirtualMachine(executable, tvm.cpu())

    def run(self, compiled: relax.VirtualMachine, case: TestCase) -> dict[str, np.ndarray]:
        device = tvm.cpu()
        args = [tvm.runtime.tensor(case.inputs[name], device) for name in case.graph.inputs]
        result: Any = compiled["main"](*args)
        results = list(result) if isinstance(result, tvm.ir.Array) else [result]
        return dict(zip(case.graph.outputs, (_as_array(r) for r in results)))


class TvmDrawnPasses(TvmRelax):
    """A seeded random valid pass sequence per case (Tzer's idea: the pass list is part of the input)."""

    name = "tvm-passes"

    def compile(self, converted: tvm.IRModule, case: TestCase) -> relax.VirtualMachine:
        try:
            return super().compile(converted, case)
        except Exception as error:
            passes = ", ".join(self.pass_names(case))
            error.add_note(f"relax passes drawn for seed {case_seed(case)}: {passes}")
            raise


def _as_array(value: Any) -> np.ndarray:
    """Relax returns an ONNX Shape output as a shape value, and one element of it as a plain int,
    not as tensors; all become int64 arrays."""
    if isinstance(value, tvm.runtime.ShapeTuple):
        return np.array(list(value), dtype=np.int64)
    if isinstance(value, int):
        return np.array(value, dtype=np.int64)
    return value.numpy()
