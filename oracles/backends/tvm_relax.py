"""Apache TVM (Relax): ONNX frontend, an explicit optimizing pass pipeline, LLVM codegen, VM."""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import numpy as np
import tvm
import tvm_ffi
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx

from fuzzer.core.testcase import TestCase
from oracles.backends.tvm_passes import BIND_PARAMS, PASS_ARGUMENTS, PASS_LISTS, PASSES, bound
from oracles.base import Unsupported
from oracles.frontends import OnnxBackend

# TVM's OpPatternKind (relax/op_attr_types.h), which AnnotateTIROpPattern writes as "op_pattern".
OP_PATTERNS = {
    0: "elemwise",
    1: "broadcast",
    2: "injective",
    3: "reduce",
    4: "out_ewise_fusable",
    7: "tuple",
    8: "opaque",
}
OPAQUE = 8  # what FuseOps takes a kernel without "op_pattern" to be
FUSING_PASS = "FuseOps"
PASS_NOTE = "relax pass: "  # what a pass's crash carries as a note, before the pass's name
BUILD_STAGE = "tvm.compile"  # the first stage: no pass of ours, only the build's own pipeline


class TvmRelax(OnnxBackend):
    name = "tvm"
    compositions = ("fused_ops",)

    def __init__(self) -> None:
        self._fired: Counter[str] = Counter()

    def setup(self) -> None:
        super().setup()
        # One runtime thread, as every backend runs: fuzzed graphs are tiny, and lanes (-j) share the cores.
        # TVM reads it when its thread pool first starts, at the first run.
        os.environ.setdefault("TVM_NUM_THREADS", "1")

    def version(self) -> str:
        return tvm.__version__

    def convert(self, case: TestCase) -> tvm.IRModule:
        try:
            return from_onnx(super().convert(case), keep_params_in_input=BIND_PARAMS in self.pass_names(case))
        except tvm.error.OpNotImplemented as error:
            raise Unsupported(str(error)) from None

    def pass_names(self, case: TestCase) -> tuple[str, ...]:
        """The Relax passes run before tvm.compile, in order."""
        return PASS_LISTS[self.name](case)

    def stages(self, case: TestCase) -> tuple[str, ...]:
        """The build alone, then each of our passes in turn."""
        return (BUILD_STAGE, *self.pass_names(case))

    def switches(self, case: TestCase) -> tuple[str, ...]:
        """Our passes by name, which PassContext's disabled_pass also takes from the build's pipeline;
        BindParams is no optimization to turn off (a list without it binds the weights at import)."""
        return tuple(dict.fromkeys(name for name in self.pass_names(case) if name != BIND_PARAMS))

    def compile(self, converted: tvm.IRModule, case: TestCase) -> relax.VirtualMachine:
        self._fired = Counter()
        restriction = self.restriction
        passes = self.pass_names(case)[: None if restriction.stages is None else restriction.stages - 1]
        with tvm.transform.PassContext(opt_level=3, disabled_pass=list(restriction.disabled)):
            optimized = converted
            for name in (name for name in passes if name not in restriction.disabled):
                if name == BIND_PARAMS:
                    optimized = bound(optimized)
                    continue
                before = optimized
                try:
                    optimized = getattr(relax.transform, name)(*PASS_ARGUMENTS.get(name, ()))(optimized)
                except Exception as error:
                    error.add_note(PASS_NOTE + name)  # triage names the failing pass
                    raise
                if self.record_optimizations:
                    self._fired += _what_changed(name, before, optimized)
            executable = tvm.compile(bound(optimized), target="llvm")  # a run cut short of BindParams
        return relax.VirtualMachine(executable, tvm.cpu())

    def optimizations(self, compiled: relax.VirtualMachine, case: TestCase) -> dict[str, int]:
        """`pass:<name>`: how often the pass changed the module; `fused_functions`: how many
        functions FuseOps built; `fused:<op patterns>`: how many of them joined those patterns;
        `fused_ops:<ops>`: how many fused those ops, in order (`fused_ops:conv2d+add+relu`)."""
        return dict(self._fired)

    def run(self, compiled: relax.VirtualMachine, case: TestCase) -> dict[str, np.ndarray]:
        device = tvm.cpu()
        args = [tvm.runtime.tensor(case.inputs[name], device) for name in case.graph.inputs]
        result: Any = compiled["main"](*args)
        results = list(result) if isinstance(result, tvm.ir.Array) else [result]
        return dict(zip(case.graph.outputs, (_as_array(r) for r in results)))


class TvmDrawnPasses(TvmRelax):
    """A seeded random valid pass sequence per case (Tzer's idea: the pass list is part of the input)."""

    name = "tvm-passes"
    batchable = False  # the pass list is drawn per case

    def drawn(self, case: TestCase) -> dict[str, Any]:
        """The pass list, which the reducer then shrinks (DuoReduce's idea)."""
        return {PASSES: list(self.pass_names(case))}

    def compile(self, converted: tvm.IRModule, case: TestCase) -> relax.VirtualMachine:
        try:
            return super().compile(converted, case)
        except Exception as error:
            error.add_note(f"relax passes of this case: {', '.join(self.pass_names(case))}")
            raise


KERNEL_NUMBER = re.compile(r"(?<=[a-z_])\d+$")


def _what_changed(name: str, before: tvm.IRModule, after: tvm.IRModule) -> Counter[str]:
    """One pass's record. Every pass returns a new module, so only structure tells a change."""
    if tvm_ffi.structural_equal(before, after):
        return Counter()
    fired = Counter({f"pass:{name}": 1})
    if name == FUSING_PASS:
        for function in after.functions.values():
            if isinstance(function, relax.Function) and function.attrs is not None and "Primitive" in function.attrs:
                fired["fused_functions"] += 1
                kernels = _kernels(function)
                fired["fused:" + "+".join(_op_patterns(kernels, after))] += 1
                fired["fused_ops:" + "+".join(_kernel_op(kernel) for kernel in kernels)] += 1
    return fired


def _kernels(fused: relax.Function) -> list[tvm.ir.GlobalVar]:
    """The TIR kernels a fused function calls, in order."""
    call_tir = tvm.ir.Op.get("relax.call_tir")
    return [
        binding.value.args[0]
        for block in fused.body.blocks
        for binding in block.bindings
        if isinstance(binding.value, relax.Call) and binding.value.op.same_as(call_tir)
    ]


def _op_patterns(kernels: list[tvm.ir.GlobalVar], module: tvm.IRModule) -> list[str]:
    """The distinct op patterns of the kernels, from simplest to most complex."""
    kinds = {int(module[kernel].attrs.get("op_pattern", OPAQUE)) for kernel in kernels}
    return [OP_PATTERNS.get(kind, f"kind{kind}") for kind in sorted(kinds)]


def _kernel_op(kernel: tvm.ir.GlobalVar) -> str:
    """The op a kernel computes: LegalizeOps names it after the op and numbers repeats (add, add1), so the
    number goes (an op whose name ends in a digit, log2, reads as log)."""
    return KERNEL_NUMBER.sub("", kernel.name_hint)


def _as_array(value: Any) -> np.ndarray:
    """Relax returns an ONNX Shape output as a shape value, and one element of it as a plain int,
    not as tensors; all become int64 arrays."""
    if isinstance(value, tvm.runtime.ShapeTuple):
        return np.array(list(value), dtype=np.int64)
    if isinstance(value, int):
        return np.array(value, dtype=np.int64)
    return value.numpy()
