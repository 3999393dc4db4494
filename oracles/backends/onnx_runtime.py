"""ONNX Runtime on the CPU: fully optimized (a system under test) and unoptimized (a reference)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime
from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

from fuzzer.core.testcase import TestCase
from oracles.base import Unsupported
from oracles.frontends import OnnxBackend


class OnnxRuntime(OnnxBackend):
    level: onnxruntime.GraphOptimizationLevel

    def version(self) -> str:
        return onnxruntime.__version__

    def compile(self, converted: Any, case: TestCase) -> onnxruntime.InferenceSession:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = self.level
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            return onnxruntime.InferenceSession(
                converted.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except OrtNotImplemented as error:  # no kernel for this op and dtype
            raise Unsupported(str(error)) from None

    def run(self, compiled: onnxruntime.InferenceSession, case: TestCase) -> dict[str, np.ndarray]:
        results = compiled.run(case.graph.outputs, case.inputs)
        return dict(zip(case.graph.outputs, (np.asarray(r) for r in results)))


class OrtOptimized(OnnxRuntime):
    name = "ort"
    level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL


class OrtNoOpt(OnnxRuntime):
    name = "ort-noopt"
    reference = True
    level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL


class OrtBasic(OnnxRuntime):
    """Only the semantics-preserving rewrites (constant folding, redundant node removal), so a
    finding that `ort` shares names the level where it first appears."""

    name = "ort-basic"
    level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC


class OrtExtended(OnnxRuntime):
    """Basic plus the complex node fusions, without the layout (NCHWc) transformer of `ort`."""

    name = "ort-extended"
    level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
