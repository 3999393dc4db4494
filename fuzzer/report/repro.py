"""Standalone reproducers: a repro.py per affected system that imports only that system, and a run
of it in a fresh, isolated interpreter that records whether it reproduced."""

from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from fuzzer.core.files import write_atomic
from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import Gradients, Readout, SecondShape, case_leaves, lifted
from fuzzer.judge.compare import Finding
from fuzzer.judge.rounding import RoundingEstimate
from oracles.backends.pytorch import Inductor
from oracles.backends.tvm_passes import BIND_PARAMS, PASS_ARGUMENTS, PASS_LISTS, bound
from oracles.registry import METAMORPHIC, load_backend, plain_system
from oracles.worker import PR_SET_PDEATHSIG
from specs.lowering import GraphModule

REPRO = "repro.py"
MODEL = "model.onnx"
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


def write_repro(
    folder: Path,
    finding: Finding,
    case: TestCase,
    expected: dict[str, Any] | None,
    model: str = MODEL,
    readouts: Sequence[Readout] = (),
) -> None:
    """repro.py and the files it reads (`model` and inputs.npz, or inputs.pt, and expected.json). For a
    metamorphic oracle, `case` is the equivalent graph, run in its inner backend's configuration; a
    torch repro computes the backend's `readouts` (the backward pass, a second shape) too."""
    system = plain_system(finding.backend)
    configured = METAMORPHIC.get(finding.backend, finding.backend)
    if system == "inductor":
        runner, computed = _torch_runner(folder, case, configured, readouts)
        expected = {name: want for name, want in expected.items() if name in computed} if expected else None
    elif system == "tvm":
        passes = list(PASS_LISTS[configured](case))
        runner = (
            _TVM_RUNNER.replace("PASSES_LIST", repr(passes))
            .replace("PASS_ARGUMENTS", repr(PASS_ARGUMENTS))
            .replace("BIND_NAME", repr(BIND_PARAMS))
            .replace("BOUND_FUNCTION", inspect.getsource(bound))
        )
    else:
        runner = _ORT_RUNNER.replace("LEVEL", load_backend(configured)[0].level.name)
    if expected is not None:
        write_atomic(folder / EXPECTED, json.dumps(expected).encode())
    needs = SYSTEMS[system][0]
    error = finding.outcome.exc_type if finding.symptom == "crash" and finding.outcome else None
    source = _TEMPLATE.format(
        needs=needs,
        model=model,
        symptom=finding.symptom,
        error=error,
        timeout=REPRO_TIMEOUT,
        runner=runner.strip(),
        marker=MARKER,
    )
    write_atomic(folder / REPRO, source.encode())


def expected_outputs(estimate: RoundingEstimate) -> dict[str, Any]:
    """What a fixed system must compute: the float64 result and the deviation rounding allows, per element."""
    return {
        name: {
            "shape": list(value.shape),
            "dtype": estimate.dtypes[name],
            "truth": np.asarray(value).ravel().tolist(),
            "allowed": np.asarray(estimate.allowed[name], np.float64).ravel().tolist(),
        }
        for name, value in estimate.truth.items()
    }


def _torch_runner(folder: Path, case: TestCase, backend: str, readouts: Sequence[Readout]) -> tuple[str, list[str]]:
    """The reduced graph as aten-level torch code (make_fx), its constants, arguments and the data of
    its readouts in inputs.pt, run in the backend's configuration: config patches, mode, dynamic
    shapes (compiled on the second shape first), the backward pass, AOTInductor. Also the names of
    what it computes."""
    backend_class = load_backend(backend)[0]
    configured = backend_class if issubclass(backend_class, Inductor) else Inductor
    leaves = case_leaves(case)
    graph = lifted(case.graph) if configured.weights_as_arguments else case.graph
    module = GraphModule(graph, {} if configured.weights_as_arguments else case.weights).eval()
    arguments = [leaves[name] for name in graph.inputs]
    gradients = next((r for r in readouts if isinstance(r, Gradients)), None)
    second_shape = next((r for r in readouts if isinstance(r, SecondShape)), None)
    second = second_shape.inputs(leaves) if second_shape else None
    with torch.no_grad():
        traced = _traced(module, arguments, symbolic=second is not None)
        if traced is None:  # the sizes do not trace symbolically: the repro runs the drawn shape alone
            traced, second = _traced(module, arguments, symbolic=False), None
    constants = {n.target: getattr(traced, n.target) for n in traced.graph.nodes if n.op == "get_attr"}
    wrt = [graph.inputs.index(name) for name in gradients.wrt] if gradients else []
    data = {
        "inputs": arguments,
        "second": second,
        "constants": constants,
        "outputs": case.graph.outputs,
        "names": graph.inputs,
        "wrt": wrt,
        "cotangents": gradients.cotangents if gradients else [],
    }
    buffer = io.BytesIO()
    torch.save(data, buffer)
    write_atomic(folder / "inputs.pt", buffer.getvalue())
    forward = textwrap.indent(traced.code.strip(), "    ")
    settings = {
        "CONFIG": configured.config,
        "MODE": configured.mode,
        "DYNAMIC": configured.dynamic,
        "AOT": configured.ahead_of_time,
        "BACKWARD": bool(wrt),
    }
    computed = [
        *case.graph.outputs,
        *(f"{SecondShape.kind}:{name}" for name in (case.graph.outputs if second is not None else [])),
        *(f"{Gradients.kind}:{graph.inputs[index]}" for index in wrt),
    ]
    return _TORCH_RUNNER.replace("FORWARD", forward).replace("SETTINGS", _assignments(settings)), computed


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
MODEL = HERE / "{model}"  # the ONNX model of the graph that shows the bug
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
    session = onnxruntime.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    inputs = dict(np.load(HERE / "inputs.npz"))
    names = [o.name for o in onnx.load(str(MODEL)).graph.output]
    results = session.run(names, inputs)
    return {name: (list(r.shape), str(r.dtype), r.ravel().tolist()) for name, r in zip(names, results)}
"""

_TVM_RUNNER = """
PASSES = PASSES_LIST  # the Relax passes the backend ran, in order (oracles/backends/tvm_passes.py)
ARGUMENTS = PASS_ARGUMENTS  # the passes built with arguments
BIND = BIND_NAME  # where the list binds the weights: they stay main's parameters until it, else import as constants


def run_model():
    import numpy as np
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load(str(MODEL))
    inputs = np.load(HERE / "inputs.npz")
    mod = from_onnx(model, keep_params_in_input=BIND in PASSES)
    with tvm.transform.PassContext(opt_level=3):
        for name in PASSES:
            mod = bound(mod) if name == BIND else getattr(relax.transform, name)(*ARGUMENTS.get(name, ()))(mod)
        executable = tvm.compile(bound(mod), target="llvm")
    vm = relax.VirtualMachine(executable, tvm.cpu())
    result = vm["main"](*(tvm.runtime.tensor(inputs[i.name]) for i in model.graph.input))
    results = list(result) if isinstance(result, tvm.ir.Array) else [result]
    arrays = [as_array(r) for r in results]
    return {o.name: (list(a.shape), str(a.dtype), a.ravel().tolist()) for o, a in zip(model.graph.output, arrays)}


from typing import Any


BOUND_FUNCTION

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
# the backend's configuration: torch._inductor.config patches, torch.compile mode, dynamic shapes,
# AOTInductor, the backward pass (BACKWARD: gradients of the arguments data["wrt"] indexes)
SETTINGS


class Graph(torch.nn.Module):
    \"\"\"The reduced graph, traced to aten ops by make_fx; constants are buffers.\"\"\"

    def __init__(self, constants):
        super().__init__()
        for name, value in constants.items():
            self.register_buffer(name, value)

FORWARD


def call(compiled, inputs):
    for tensor in inputs if DYNAMIC else []:
        for dim in range(tensor.dim()):
            torch._dynamo.maybe_mark_dynamic(tensor, dim)
    return list(compiled(*inputs))


def compute(compiled, data):
    \"\"\"What the backend computes: outputs on the second shape first (dynamic shapes), then forward and
    backward (loss: the sum of each output times its fixed cotangent), or forward alone.\"\"\"
    results = {}
    if data["second"] is not None:
        with torch.no_grad():
            results |= {"shape2:" + name: r for name, r in zip(data["outputs"], call(compiled, data["second"]))}
    inputs = [x.detach().requires_grad_(i in data["wrt"]) for i, x in enumerate(data["inputs"])]
    with torch.set_grad_enabled(BACKWARD):
        outputs = call(compiled, inputs)
        if BACKWARD:
            wrt = [inputs[i] for i in data["wrt"]]
            terms = [(o * c.to(o.dtype)).sum().double() for o, c in zip(outputs, data["cotangents"]) if c is not None]
            loss = torch.stack(terms).sum()
            grads = torch.autograd.grad(loss, wrt, materialize_grads=True) if loss.requires_grad else None
            grads = grads or [torch.zeros_like(x) for x in wrt]
            results |= {"grad:" + data["names"][i]: g for i, g in zip(data["wrt"], grads)}
    results |= dict(zip(data["outputs"], outputs))
    return {
        name: (list(r.shape), str(r.dtype).removeprefix("torch."), r.detach().flatten().tolist())
        for name, r in results.items()
    }


def run_model():
    torch.set_num_threads(1)
    data = torch.load(HERE / "inputs.pt")
    module = Graph(data["constants"]).eval()
    if AOT:  # torch.export, then AOTInductor: a C++ package built ahead of time and loaded back
        exported = torch.export.export(module, tuple(data["inputs"]))
        package = torch._inductor.aoti_compile_and_package(
            exported, package_path=str(HERE / "model.pt2"), inductor_configs=CONFIG
        )
        return compute(torch._inductor.aoti_load_package(package), data)
    compiled = torch.compile(module, backend="inductor", fullgraph=True, dynamic=DYNAMIC, mode=MODE)
    with torch._inductor.config.patch(CONFIG):
        compute(compiled, data)  # the first calls compile (dynamic shapes: on the second shape)
    return compute(compiled, data)
"""
