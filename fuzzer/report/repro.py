"""Standalone reproducers: a repro.py per affected system that imports only that system, and a run
of it in a fresh, isolated interpreter that records whether it reproduced."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from fuzzer.core.files import write_atomic
from fuzzer.core.testcase import TestCase
from fuzzer.judge.compare import Finding
from oracles.backends.inductor_configs import second_shape_inputs
from oracles.backends.pytorch import Inductor, tensors
from oracles.backends.tvm_passes import PASS_ARGUMENTS, PASS_LISTS
from oracles.registry import load_backend, plain_system
from oracles.worker import PR_SET_PDEATHSIG
from specs.lowering import GraphModule

REPRO = "repro.py"
EXPECTED = "expected.json"
MARKER = "dlfuzz-repro: bug present"
REPRO_TIMEOUT = 300
DLFUZZ_PACKAGES = ("fuzzer", "specs", "oracles")
SYSTEMS = {  # system -> (what the repro needs, top-level modules it must not import)
    "ort": ("onnx, onnxruntime, numpy", ("torch", "tvm")),
    "tvm": ("onnx, apache-tvm, numpy", ("torch", "onnxruntime")),
    "inductor": ("torch", ("onnx", "onnxruntime", "tvm")),
}


def has_repro(backend: str) -> bool:
    return plain_system(backend) in SYSTEMS


def write_repro(folder: Path, finding: Finding, case: TestCase, expected: dict[str, Any] | None) -> None:
    """repro.py and the files it reads (model.onnx and inputs.npz, or inputs.pt, and expected.json)."""
    if expected is not None:
        write_atomic(folder / EXPECTED, json.dumps(expected).encode())
    system = plain_system(finding.backend)
    if system == "inductor":
        runner = _torch_runner(folder, case, finding.backend)
    elif system == "tvm":
        passes = list(PASS_LISTS[finding.backend](case))
        runner = _TVM_RUNNER.replace("PASSES_LIST", repr(passes)).replace("PASS_ARGUMENTS", repr(PASS_ARGUMENTS))
    else:
        runner = _ORT_RUNNER.replace("LEVEL", load_backend(finding.backend)[0].level.name)
    needs = SYSTEMS[system][0]
    error = finding.outcome.exc_type if finding.symptom == "crash" and finding.outcome else None
    source = _TEMPLATE.format(
        needs=needs,
        symptom=finding.symptom,
        error=error,
        timeout=REPRO_TIMEOUT,
        runner=runner.strip(),
        marker=MARKER,
    )
    write_atomic(folder / REPRO, source.encode())


def expected_outputs(truth: dict[str, np.ndarray], allowed: dict[str, np.ndarray], case: TestCase) -> dict[str, Any]:
    """What a fixed system must compute: the float64 result and the deviation rounding allows, per element."""
    return {
        name: {
            "shape": list(value.shape),
            "dtype": case.graph.types[name].dtype,
            "truth": np.asarray(value).ravel().tolist(),
            "allowed": np.asarray(allowed[name], np.float64).ravel().tolist(),
        }
        for name, value in truth.items()
    }


def _torch_runner(folder: Path, case: TestCase, backend: str) -> str:
    """The reduced graph as aten-level torch code (make_fx), its constants and inputs in inputs.pt,
    compiled in the backend's configuration: config patches, mode, and for dynamic shapes, first on
    the backend's second shape."""
    backend_class = load_backend(backend)[0]
    configured = backend_class if issubclass(backend_class, Inductor) else Inductor
    module = GraphModule(case.graph, case.weights).eval()
    inputs = tensors(case.inputs[name] for name in case.graph.inputs)
    second = second_shape_inputs(module, case) if configured.dynamic else None
    with torch.no_grad():
        traced = _traced(module, inputs, symbolic=second is not None)
        if traced is None:  # the sizes do not trace symbolically: the repro compiles on the drawn shape
            traced, second = _traced(module, inputs, symbolic=False), None
    constants = {n.target: getattr(traced, n.target) for n in traced.graph.nodes if n.op == "get_attr"}
    buffer = io.BytesIO()
    compile_with = [second or inputs]
    data = {"inputs": inputs, "compile_with": compile_with, "constants": constants, "outputs": case.graph.outputs}
    torch.save(data, buffer)
    write_atomic(folder / "inputs.pt", buffer.getvalue())
    forward = textwrap.indent(traced.code.strip(), "    ")
    settings = {"CONFIG": configured.config, "MODE": configured.mode, "DYNAMIC": configured.dynamic}
    return _TORCH_RUNNER.replace("FORWARD", forward).replace("SETTINGS", _assignments(settings))


def _traced(module: GraphModule, inputs: list[torch.Tensor], symbolic: bool) -> torch.fx.GraphModule | None:
    """The module as aten-level code; with symbolic sizes, traced before dispatch so that composite
    ops (matmul) keep their size arithmetic instead of the sizes of this trace. None where the
    symbolic trace fails."""
    if not symbolic:
        return make_fx(lambda *xs: module(*xs))(*inputs)
    try:
        trace = make_fx(
            lambda *xs: module(*xs), tracing_mode="symbolic", _allow_non_fake_inputs=True, pre_dispatch=True
        )
        return trace(*inputs)
    except Exception:
        return None


def _assignments(values: dict[str, Any]) -> str:
    return "\n".join(f"{name} = {value!r}" for name, value in values.items())


def run_repro(folder: Path, backend: str, symptom: str) -> dict[str, Any]:
    """Run repro.py in a fresh interpreter (-I) that refuses dlfuzz and the other systems."""
    blocked = [*DLFUZZ_PACKAGES, *SYSTEMS[plain_system(backend)][1]]
    guard = _GUARD.format(blocked=blocked, pdeathsig=PR_SET_PDEATHSIG, parent=os.getpid())
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", guard],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=REPRO_TIMEOUT + 60,
        )
        code, output = done.returncode, (done.stdout + done.stderr)[-3000:]
    except subprocess.TimeoutExpired:
        code, output = None, "repro.py did not finish"
    died = code is not None and code < 0
    reproduced = (
        (code == 1 and MARKER in output) or (died and symptom == "died") or (code is None and symptom == "timeout")
    )
    return {
        "reproduced": reproduced,
        "exit_code": code,
        "seconds": round(time.monotonic() - start, 2),
        "isolation": f"python -I, imports of {', '.join(blocked)} refused",
        "output": output.strip(),
    }


_GUARD = """
import ctypes, importlib.abc, importlib.util, os, runpy, signal, sys
if sys.platform.startswith("linux"):  # end with the dlfuzz process that runs it, as dlfuzz's workers do
    ctypes.CDLL(None).prctl({pdeathsig}, signal.SIGKILL)
if os.getppid() != {parent}:
    sys.exit("dlfuzz, which ran this reproducer, is gone")
BLOCKED = {blocked!r}
def refused(name):
    return name.partition(".")[0] in BLOCKED
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if refused(name):
            raise ModuleNotFoundError("not installed here (the reproducer may not import it): " + name)
sys.meta_path.insert(0, Refuse())
probe = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: None if refused(name) else probe(name, package)
sys.argv = ["repro.py"]
runpy.run_path("repro.py", run_name="__main__")
"""

_TEMPLATE = '''"""Reproducer written by dlfuzz; needs only {needs}.

Exit status 1 while the bug is present ({symptom}), 0 once it is fixed, 2 on a different error.
"""

import json
import os
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYMPTOM = "{symptom}"
ERROR = {error!r}  # the exception type the crash raises


{runner}


def compare(actual):
    """The first element farther from the float64 result than rounding allows, or None."""
    expected = json.loads((HERE / "expected.json").read_text())
    for name, want in expected.items():
        shape, dtype, values = actual[name]
        if shape != want["shape"] or dtype != want["dtype"]:
            return f"{{name}}: expected {{want['dtype']}}{{want['shape']}}, got {{dtype}}{{shape}}"
        for index, (got, truth, allowed) in enumerate(zip(values, want["truth"], want["allowed"])):
            if got != got and truth != truth or got == truth or abs(got - truth) <= allowed:
                continue
            return (
                f"{{name}}, flat index {{index}}: expected {{truth}} (float64; rounding allows "
                f"+-{{allowed:.3g}}), got {{got}}"
            )
    return None


def bug(text):
    print(f"{marker}: {{text}}"[:3000], flush=True)
    sys.exit(1)


def survive_death():
    """A bug that kills the process: the model runs in a forked child, and its death is reported."""
    child = os.fork()
    if child == 0:
        return
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        bug(f"the process died of {{signal.Signals(os.WTERMSIG(status)).name}}")
    sys.exit(os.WEXITSTATUS(status))


if SYMPTOM == "died":
    survive_death()
signal.signal(signal.SIGALRM, lambda *_: bug("no result after {timeout} s"))
signal.alarm({timeout})
try:
    actual = run_model()
except Exception as error:
    if SYMPTOM != "crash" or ERROR not in (None, type(error).__name__):
        print(f"dlfuzz-repro: not the reported {{SYMPTOM}} ({{ERROR}}): {{type(error).__name__}}: {{error}}")
        sys.exit(2)
    bug(f"{{type(error).__name__}}: {{error}}")
signal.alarm(0)
problem = compare(actual) if SYMPTOM == "mismatch" else None
if problem:
    bug(problem)
print("dlfuzz-repro: fixed: it ran" + (" and its outputs are right" if SYMPTOM == "mismatch" else " without error"))
sys.exit(0)
'''

_ORT_RUNNER = """
def run_model():
    import numpy as np
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.LEVEL
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(HERE / "model.onnx"), options, providers=["CPUExecutionProvider"])
    inputs = dict(np.load(HERE / "inputs.npz"))
    names = [o.name for o in onnx.load(str(HERE / "model.onnx")).graph.output]
    results = session.run(names, inputs)
    return {name: (list(r.shape), str(r.dtype), r.ravel().tolist()) for name, r in zip(names, results)}
"""

_TVM_RUNNER = """
PASSES = PASSES_LIST  # the Relax passes the backend ran, in order (oracles/backends/tvm_passes.py)
ARGUMENTS = PASS_ARGUMENTS  # the passes built with arguments


def run_model():
    import numpy as np
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load(str(HERE / "model.onnx"))
    inputs = np.load(HERE / "inputs.npz")
    mod = from_onnx(model, keep_params_in_input=False)
    with tvm.transform.PassContext(opt_level=3):
        for name in PASSES:
            mod = getattr(relax.transform, name)(*ARGUMENTS.get(name, ()))(mod)
        executable = tvm.compile(mod, target="llvm")
    vm = relax.VirtualMachine(executable, tvm.cpu())
    result = vm["main"](*(tvm.runtime.tensor(inputs[i.name]) for i in model.graph.input))
    results = list(result) if isinstance(result, tvm.ir.Array) else [result]
    arrays = [as_array(r) for r in results]
    return {o.name: (list(a.shape), str(a.dtype), a.ravel().tolist()) for o, a in zip(model.graph.output, arrays)}


def as_array(value):
    # Relax returns a Shape output as a shape value and one element of it as an int: int64 tensors in ONNX
    import numpy as np
    import tvm

    if isinstance(value, tvm.runtime.ShapeTuple):
        return np.array(list(value), dtype=np.int64)
    if isinstance(value, int):
        return np.array(value, dtype=np.int64)
    return value.numpy()
"""

_TORCH_RUNNER = """
import torch
from torch import device  # noqa: F401  (the traced code may name devices)

inf, nan, NoneType = float("inf"), float("nan"), type(None)
# the backend's configuration: torch._inductor.config patches, torch.compile mode, dynamic shapes
SETTINGS


class Graph(torch.nn.Module):
    \"\"\"The reduced graph, traced to aten ops by make_fx; constants are buffers.\"\"\"

    def __init__(self, constants):
        super().__init__()
        for name, value in constants.items():
            self.register_buffer(name, value)

FORWARD


def run_model():
    torch.set_num_threads(1)
    data = torch.load(HERE / "inputs.pt")
    module = Graph(data["constants"]).eval()
    compiled = torch.compile(module, backend="inductor", fullgraph=True, dynamic=DYNAMIC, mode=MODE)
    with torch._inductor.config.patch(CONFIG), torch.no_grad():
        for inputs in data["compile_with"]:  # the first call compiles; dynamic shapes: on the second shape
            for tensor in inputs if DYNAMIC else []:
                for dim in range(tensor.dim()):
                    torch._dynamo.maybe_mark_dynamic(tensor, dim)
            compiled(*inputs)
    with torch.no_grad():
        results = compiled(*data["inputs"])
    return {
        name: (list(r.shape), str(r.dtype).removeprefix("torch."), r.flatten().tolist())
        for name, r in zip(data["outputs"], results)
    }
"""
