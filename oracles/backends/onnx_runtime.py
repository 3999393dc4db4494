"""ONNX Runtime on the CPU: fully optimized (a system under test) and unoptimized (a reference)."""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

from fuzzer.core.testcase import TestCase
from oracles.base import Unsupported
from oracles.frontends import OnnxBackend

STANDARD_DOMAINS = ("", "ai.onnx")
Level = onnxruntime.GraphOptimizationLevel
# The levels in order, each running the optimizers of those before it too.
LEVELS = {"basic": Level.ORT_ENABLE_BASIC, "extended": Level.ORT_ENABLE_EXTENDED, "all": Level.ORT_ENABLE_ALL}
# The CPU graph transformers and rewrite rules of onnxruntime/core/optimizer/graph_transformer_utils.cc
# that float graphs can reach (quantization ones left out), by the names `disabled_optimizers` takes;
# each one is a name or class in ORT's library (tests check it).
OPTIMIZERS = tuple(
    [
        "ConstantFolding",
        "ConstantSharing",
        "CommonSubexpressionElimination",
        "TransposeOptimizer",
        "EliminateIdentity",
        "EliminateSlice",
        "EliminateDropout",
        "UnsqueezeElimination",
        "ExpandElimination",
        "CastElimination",
        "CastChainElimination",
        "PreShapeNodeElimination",
        "NoopElimination",
        "ReshapeFusion",
        "DivMulFusion",
        "FuseReluClip",
        "GemmSumFusion",
        "GemmTransposeFusion",
        "NotWhereFusion",
        "LabelEncoderFusion",
        "ConvAddFusion",
        "ConvMulFusion",
        "ConvBNFusion",
        "ConvAddActivationFusion",
        "ConvActivationFusion",
        "MatMulAddFusion",
        "AttentionFusion",
        "SkipLayerNormFusion",
        "MatmulBNFusion",
        "PadFusion",
        "GatherSliceToSplitFusion",
        "GemmActivationFusion",
        "GeluFusionL1",
        "GeluFusionL2",
        "FastGeluFusion",
        "QuickGeluFusion",
        "BiasGeluFusion",
        "SwiGluFusion",
        "LayerNormFusionL1",
        "LayerNormFusionL2",
        "SimplifiedLayerNormFusion",
        "EmbedLayerNormFusion",
        "GatherToSliceFusion",
        "MatmulTransposeFusion",
        "MatMulScaleFusion",
        "MatMulActivationFusion",
        "BiasSoftmaxFusion",
        "BiasDropoutFusion",
        "NchwcTransformer",
        "NhwcTransformer",
    ]
)
# ORT's save of the optimized model costs ~2 ms on a disk and nothing on a RAM disk.
RAM_DISK = Path("/dev/shm")
# graph_transformer.cc logs each transformer it applied: "GraphTransformer <name> modified: 1 with status: OK".
TRANSFORMER_LOG = re.compile(r"GraphTransformer (\w+) modified: 1 ")


class OnnxRuntime(OnnxBackend):
    level: onnxruntime.GraphOptimizationLevel
    compositions = ("gained", "lost")

    def __init__(self) -> None:
        self._input_ops: Counter[str] = Counter()
        self._transformers: Counter[str] = Counter()
        self._optimized_path: Path | None = None

    def version(self) -> str:
        return onnxruntime.__version__

    def stages(self, case: TestCase) -> tuple[str, ...]:
        """The optimization levels up to this backend's own."""
        names = list(LEVELS)
        return tuple(names[: list(LEVELS.values()).index(self.level) + 1]) if self.level in LEVELS.values() else ()

    def switches(self, case: TestCase) -> tuple[str, ...]:
        return OPTIMIZERS if self.stages(case) else ()

    def compile(self, converted: Any, case: TestCase) -> onnxruntime.InferenceSession:
        options = onnxruntime.SessionOptions()
        stages, disabled = self.restriction.stages, self.restriction.disabled
        options.graph_optimization_level = self.level if stages is None else LEVELS[self.stages(case)[stages - 1]]
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        if not self.record_optimizations:
            return _session(converted, options, disabled)
        # ORT writes the graph it will run, layout transforms (com.microsoft.nchwc) included, as ONNX.
        self._input_ops = op_types(converted.graph)
        self._optimized_path = _temporary_path(".onnx")
        options.optimized_model_filepath = str(self._optimized_path)
        # At INFO, ORT's session logger names each graph transformer that changed the graph; it writes
        # to the process's stderr, so that is where it is read from.
        options.log_severity_level = 1
        with _stderr_captured() as log:
            session = _session(converted, options, disabled)
            log.seek(0)
            self._transformers = Counter(TRANSFORMER_LOG.findall(log.read().decode(errors="replace")))
        return session

    def optimizations(self, compiled: onnxruntime.InferenceSession, case: TestCase) -> dict[str, int]:
        """The graph transformers that changed the graph (`transformer:ConvActivationFusion`), the fused
        kernels with the activation folded into them (`fused:com.microsoft.FusedConv+Relu`), and the op
        types the optimized graph gained and lost, by domain-qualified name (`gained:Gemm`, `lost:Relu`)."""
        if self._optimized_path is None:
            return {}
        try:
            graph = onnx.load(self._optimized_path, load_external_data=False).graph
        finally:
            self.teardown()
        optimized = op_types(graph)
        gained, lost = optimized - self._input_ops, self._input_ops - optimized
        return (
            {f"transformer:{name}": n for name, n in self._transformers.items()}
            | _fused(graph)
            | {f"gained:{op}": n for op, n in gained.items()}
            | {f"lost:{op}": n for op, n in lost.items()}
        )

    def run(self, compiled: onnxruntime.InferenceSession, case: TestCase) -> dict[str, np.ndarray]:
        results = compiled.run(case.graph.outputs, case.inputs)
        return dict(zip(case.graph.outputs, (np.asarray(r) for r in results)))

    def teardown(self) -> None:
        if self._optimized_path is not None:
            self._optimized_path.unlink(missing_ok=True)
            self._optimized_path = None


class OrtOptimized(OnnxRuntime):
    name = "ort"
    level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL


class OrtNoOpt(OnnxRuntime):
    name = "ort-noopt"
    reference = True
    level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    record_optimizations = False  # nothing to record: it runs the graph as given


class OrtBasic(OnnxRuntime):
    """Only the semantics-preserving rewrites (constant folding, redundant node removal), so a
    finding that `ort` shares names the level where it first appears."""

    name = "ort-basic"
    level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC


class OrtExtended(OnnxRuntime):
    """Basic plus the complex node fusions, without the layout (NCHWc) transformer of `ort`."""

    name = "ort-extended"
    level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED


def _session(
    converted: onnx.ModelProto, options: onnxruntime.SessionOptions, disabled: Collection[str]
) -> onnxruntime.InferenceSession:
    try:
        return onnxruntime.InferenceSession(
            converted.SerializeToString(),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(disabled) or None,
        )
    except OrtNotImplemented as error:  # no kernel for this op and dtype
        raise Unsupported(str(error)) from None


@contextmanager
def _stderr_captured() -> Iterator[Any]:
    """A file that takes what the process writes to file descriptor 2 meanwhile, native code included."""
    with tempfile.TemporaryFile(dir=RAM_DISK if RAM_DISK.is_dir() else None) as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _fused(graph: onnx.GraphProto) -> dict[str, int]:
    """Fused kernels that carry the activation ORT folded into them (FusedConv, FusedGemm, NCHWc Conv)."""
    fused: Counter[str] = Counter()
    for node in _nodes(graph):
        for attribute in node.attribute:
            if attribute.name == "activation" and attribute.s:
                fused[f"fused:{_qualified(node)}+{attribute.s.decode()}"] += 1
    return dict(fused)


def op_types(graph: onnx.GraphProto) -> Counter[str]:
    """How many nodes of each op type the graph holds, its subgraphs (If, Loop, Scan bodies) included."""
    return Counter(_qualified(node) for node in _nodes(graph))


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for subgraph in [attribute.g] if attribute.HasField("g") else attribute.graphs:
                yield from _nodes(subgraph)


def _qualified(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in STANDARD_DOMAINS else f"{node.domain}.{node.op_type}"


def _temporary_path(suffix: str) -> Path:
    folder = RAM_DISK if RAM_DISK.is_dir() and os.access(RAM_DISK, os.W_OK) else None
    handle, name = tempfile.mkstemp(prefix="dlfuzz-", suffix=suffix, dir=folder)
    os.close(handle)
    return Path(name)
