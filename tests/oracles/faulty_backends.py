"""Backends that misbehave on purpose, to prove a campaign survives them."""

from __future__ import annotations

import ctypes
import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fuzzer.core.ir import Node
from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import Run
from oracles.backends.inductor_configs import InductorDynamic, InductorGrad
from oracles.backends.metamorphic import Metamorphic
from oracles.backends.onnx_runtime import OrtNoOpt
from oracles.backends.tvm_passes import PASSES
from oracles.frontends import OnnxBackend
from specs.base import spec_of
from specs.lowering import GraphModule


class Faulty(OnnxBackend):
    def version(self) -> str:
        return "0"

    def compile(self, converted: Any, case: TestCase) -> Any:
        self.misbehave()
        return converted

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        return {}

    def misbehave(self) -> None:
        raise NotImplementedError


class Segfault(Faulty):
    name = "segfault"

    def misbehave(self) -> None:
        ctypes.string_at(0)


class Hang(Faulty):
    name = "hang"

    def misbehave(self) -> None:
        time.sleep(3600)


class Aborts(Faulty):
    name = "aborts"

    def misbehave(self) -> None:
        os.abort()


class Exits(Faulty):
    """Leaves with os._exit, as a compiler's fatal path may: no exception, no signal."""

    name = "exits"

    def misbehave(self) -> None:
        os._exit(3)


class Deadlocks(Faulty):
    """Waits on a lock it already holds, which no signal of Python's own interrupts."""

    name = "deadlocks"

    def misbehave(self) -> None:
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()


class EatsMemory(Faulty):
    """Asks for 12 GiB at once, past a worker's default limit of 8 GiB; np.empty only reserves the
    pages, so without the limit it would run without touching them."""

    name = "eats-memory"

    def misbehave(self) -> None:
        np.empty(12 * 2**30, np.uint8)


class DiskFull(Faulty):
    """Meets a full disk while writing a temporary model, as ONNX Runtime's backend may."""

    name = "disk-full"

    def misbehave(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/tmp/dlfuzz-model.onnx")


class Chatty(Faulty):
    """Prints 300 kB on every case, as a compiler's verbose log does."""

    name = "chatty"

    def misbehave(self) -> None:
        print(("x" * 299 + "\n") * 1000, end="", flush=True)


class Raises(Faulty):
    name = "raises"

    def misbehave(self) -> None:
        raise RuntimeError("planted failure at node n4 (value 17)")


class LacksFloat64(Faulty):
    """Declares float64 unsupported and runs everything else (by running nothing)."""

    name = "lacks-float64"

    def misbehave(self) -> None:
        pass

    def unsupported(self, case: TestCase) -> str | None:
        has_float64 = any(t.dtype == "float64" for t in case.graph.types.values())
        return "no float64 kernels" if has_float64 else None


class PlantedBug(OnnxBackend):
    """Computes the case as eager does, but misbehaves on every node whose op type starts with `target`."""

    target = "Sigmoid"

    def version(self) -> str:
        return "0"

    def compile(self, converted: Any, case: TestCase) -> Any:
        return converted

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        self.env = env = {name: torch.from_numpy(np.array(value)) for name, value in case.values.items()}
        for node in case.graph.nodes:
            result = spec_of(node).to_torch(*(env[name] for name in node.inputs))
            results = result if isinstance(result, tuple) else (result,)
            if node.op.startswith(self.target):
                results = self.corrupt(node, results)
            env.update(zip(node.outputs, results))
        return {name: env[name].numpy() for name in case.graph.outputs}

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


class CrashOnSigmoid(PlantedBug):
    name = "crash-sigmoid"

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        raise RuntimeError(f"planted crash in node {node.outputs[0]} at {hex(id(node))}, size {results[0].numel()}")


class WrongOnSigmoid(PlantedBug):
    name = "wrong-sigmoid"

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(r + 0.5 for r in results)


class StagedWrongOnSigmoid(WrongOnSigmoid):
    """Wrong on Sigmoid from its second stage on, and only while its switch FoldSigmoid is on: the
    guilty stage and pass a triage search must name."""

    name = "staged-sigmoid"

    def stages(self, case: TestCase) -> tuple[str, ...]:
        return ("parse", "fold", "fuse")

    def switches(self, case: TestCase) -> tuple[str, ...]:
        return ("Cleanup", "FoldSigmoid", "Fuse")

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        stages, disabled = self.restriction.stages, self.restriction.disabled
        if (stages is not None and stages < 2) or "FoldSigmoid" in disabled:
            return results
        return super().corrupt(node, results)


class Float64Sigmoid(PlantedBug):
    """Returns Sigmoid in float64, and, like a compiler type-checking the next op, fails on any node
    that then reads operands of another dtype than the graph declares."""

    name = "float64-sigmoid"

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(r.double() for r in results)

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        for node in case.graph.nodes:
            fed_by_sigmoid = any(case.graph.producer().get(n, node).op == "Sigmoid" for n in node.inputs)
            if node.op != "Sigmoid" and fed_by_sigmoid and case.graph.types[node.inputs[0]].dtype != "float64":
                raise TypeError(f"operands of {node.op} {node.outputs[0]} have different dtypes")
        return super().run(compiled, case)


class NoisyThenSegfault(Faulty):
    """Prints an error-looking line on its first case and runs it, then segfaults on the next:
    a warm worker's log holds what earlier cases printed."""

    name = "noisy-then-segfault"
    cases = 0

    def misbehave(self) -> None:
        type(self).cases += 1
        if type(self).cases == 1:
            print("RuntimeError: a warning an earlier case printed", flush=True)
            return
        ctypes.string_at(0)


class ReduceFaults(PlantedBug):
    """Two defects in the Reduce family, as TVM has: every Reduce* returns its input when asked for
    no axes with noop_with_empty_axes=1, and ReduceMean of int32 is off by one whatever its axes."""

    name = "reduce-faults"
    target = "Reduce"

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        if node.attrs.get("noop_with_empty_axes") and not node.attrs.get("axes"):
            return (self.env[node.inputs[0]],)
        if node.op == "ReduceMean" and results[0].dtype == torch.int32:
            return (results[0] + 1,)
        return results


class LayerNormScaleCrash(PlantedBug):
    """Crashes on a LayerNormalization whose Scale or B is not the normalized shape, with another
    exception for a rank than for a size that differs: one defect, two faces."""

    name = "layernorm-crash"
    target = "LayerNormalization"

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        normalized = tuple(self.env[node.inputs[0]].shape[node.attrs["axis"] :])
        params = [tuple(self.env[name].shape) for name in node.inputs[1:]]
        if any(len(param) != len(normalized) for param in params):
            raise ValueError(f"scale of {node.outputs[0]} must have {len(normalized)} dims")
        if any(param != normalized for param in params):
            raise IndexError(f"index {len(normalized)} is out of bounds for scale")
        return results


class RecordingFails(Faulty):
    """Compiles and runs, but reading what its compile fired raises: a bug of ours, not of a compiler."""

    name = "recording-fails"

    def misbehave(self) -> None:
        pass

    def optimizations(self, compiled: Any, case: TestCase) -> dict[str, int]:
        raise KeyError("op_pattern")


class FiresThenFailsToRun(Faulty):
    """Compiles with one optimization fired, then fails at run time."""

    name = "fires-then-fails"

    def misbehave(self) -> None:
        pass

    def optimizations(self, compiled: Any, case: TestCase) -> dict[str, int]:
        return {"pass:Planted": 1}

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        raise RuntimeError("planted failure at run time")


class CrashesEveryOtherRun(PlantedBug):
    """Computes every case as eager does, but crashes on every second run in its worker: a flaky compiler."""

    name = "flaky"
    target = ""  # every node
    runs = 0

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        type(self).runs += 1
        return super().run(compiled, case)

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        if type(self).runs % 2 == 0:
            raise RuntimeError("planted crash on an even run")
        return results


class _DoubledBackward(torch.autograd.Function):
    """Identity forward, a backward that doubles the gradient: a miscompiled backward pass."""

    @staticmethod
    def forward(ctx: Any, value: torch.Tensor) -> torch.Tensor:
        return value.view_as(value)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad * 2


class WrongBackward(InductorGrad):
    """inductor-grad whose forward is right and whose backward doubles every gradient."""

    name = "wrong-backward"

    def module_run(self, compiled: Any, case: TestCase) -> Run:
        run = super().module_run(compiled, case)
        return lambda leaves: [_DoubledBackward.apply(out) for out in run(leaves)]


class WrongAtSecondShape(InductorDynamic):
    """inductor-dynamic that is right on the drawn shape and off by 0.5 on every other one."""

    name = "wrong-at-second-shape"

    def module_run(self, compiled: Any, case: TestCase) -> Run:
        run = super().module_run(compiled, case)
        drawn = [case.values[name].shape for name in self.arguments(case)]

        def shifted(leaves: dict[str, torch.Tensor]) -> list[torch.Tensor]:
            outputs = run(leaves)
            same = [tuple(leaves[name].shape) for name in self.arguments(case)] == drawn
            return outputs if same else [out + 0.5 for out in outputs]

        return shifted


class EagerTwoShapes(InductorDynamic):
    """inductor-dynamic's two shapes per case, run by eager: no compile to wait for."""

    name = "eager-two-shapes"

    def compile(self, converted: GraphModule, case: TestCase) -> GraphModule:
        return converted


class BatchedCrashOnSigmoid(CrashOnSigmoid):
    name = "batched-crash-sigmoid"
    batch_size = 4


class BatchedWrongOnSigmoid(WrongOnSigmoid):
    name = "batched-wrong-sigmoid"
    batch_size = 4


class WrongWhenBatched(PlantedBug):
    """Right on every case alone, wrong on every graph merged from several (the second part's
    tensors are renamed g1_...): a batch's mismatch that is not the case's own."""

    name = "wrong-when-batched"
    target = ""
    batch_size = 4

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(r + 1 for r in results) if node.outputs[0].startswith("g1_") else results


class WrongTimesOne(PlantedBug):
    """Folds x * 1 wrongly (to x + 1) where the 1 is a scalar weight: generated graphs have none, the
    metamorphic rewrite mul-one makes one."""

    name = "wrong-times-one"
    target = "Mul"

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        self.weights = set(case.graph.weights)
        return super().run(compiled, case)

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        ones = [n for n in node.inputs if n in self.weights and self.env[n].dim() == 0 and self.env[n].item() == 1]
        return tuple(r + 1 for r in results) if ones else results


class MetaWrongTimesOne(Metamorphic):
    name = "meta-wrong-times-one"
    inner_ref = "tests.oracles.faulty_backends:WrongTimesOne"


class MetaOrtNoOpt(Metamorphic):
    """The metamorphic oracle around a correct compiler: every finding would be a false alarm."""

    name = "meta-ort-noopt"
    inner_ref = "ort-noopt"


# The pass list StagedPasses draws from the seed: wrong on Sigmoid while FoldSigmoid is among them.
DRAWN_PASSES = ("Cleanup", "Fuse", "FoldSigmoid", "Cleanup", "Layout", "Fuse", "Inline")


class WrongUnderFoldSigmoid(WrongOnSigmoid):
    """Wrong on Sigmoid only while its pass list holds FoldSigmoid; the list is pinned as tvm-passes'
    is, so the reducer can shrink it to that one pass."""

    name = "wrong-under-fold-sigmoid"

    def passes(self, case: TestCase) -> tuple[str, ...]:
        return tuple(case.meta.get(PASSES, DRAWN_PASSES))

    def drawn(self, case: TestCase) -> dict[str, Any]:
        return {PASSES: list(self.passes(case))}

    def stages(self, case: TestCase) -> tuple[str, ...]:
        return ("parse", *self.passes(case))

    def switches(self, case: TestCase) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.passes(case)))

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        stages, disabled = self.restriction.stages, self.restriction.disabled
        run = self.passes(self.case)[: None if stages is None else stages - 1]
        return super().corrupt(node, results) if "FoldSigmoid" in set(run) - set(disabled) else results

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        self.case = case
        return super().run(compiled, case)


class SlowCompile(Faulty):
    """Takes two seconds to compile and runs nothing."""

    name = "slow-compile"

    def misbehave(self) -> None:
        time.sleep(2)


class MetaSlowCompile(Metamorphic):
    name = "meta-slow-compile"
    inner_ref = "tests.oracles.faulty_backends:SlowCompile"


class BreaksOnFlag(PlantedBug):
    """Computes every case as eager does until the file named by $DLFUZZ_TEST_BREAK exists, then crashes
    on every node: a compiler release that regressed, switched by the test."""

    name = "breaks-on-flag"
    target = ""  # every node

    def corrupt(self, node: Node, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        if Path(os.environ["DLFUZZ_TEST_BREAK"]).exists():
            raise RuntimeError("planted regression")
        return results


class SkewedReference(OrtNoOpt):
    """A reference one off from the other on every float output: the references disagree, as they do
    where a spec's two lowerings do (a bug of ours), and the case is invalid."""

    name = "skewed-reference"

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        outputs = super().run(compiled, case)
        return {name: value + 1 if value.dtype.kind == "f" else value for name, value in outputs.items()}
