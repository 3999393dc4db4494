"""Bug folders: the case, the model, a Markdown report and a standalone reproducer."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from fuzzer.materialize import to_onnx
from fuzzer.testcase import TestCase, write_atomic
from oracles.base import BackendInfo, Outcome
from oracles.compare import TOLERANCES, Finding

PROJECT = {"ort": "ONNX Runtime", "tvm": "Apache TVM", "inductor": "PyTorch (TorchInductor)"}


def write_bug(
    folder: Path,
    signature: str,
    finding: Finding,
    case: TestCase,
    outcomes: dict[str, Outcome],
    infos: dict[str, BackendInfo],
) -> None:
    """Create a bug folder for a new signature; every file is written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    case.save(folder)
    model = to_onnx(case.graph, case.weights)
    write_atomic(folder / "model.onnx", model.SerializeToString())
    _save_npz(folder / "inputs.npz", case.inputs)
    expected = outcomes[finding.against].outputs if finding.against else None
    if expected is not None:
        _save_npz(folder / "expected.npz", expected)
    meta = {
        "signature": signature,
        "backend": finding.backend,
        "symptom": finding.symptom,
        "finding": finding.to_json(),
        "versions": {name: info.version for name, info in infos.items()},
        "case": case.meta,
    }
    write_atomic(folder / "meta.json", json.dumps(meta, indent=1, sort_keys=True).encode())
    write_atomic(folder / "repro.py", render_repro(finding, case, infos).encode())
    write_atomic(folder / "report.md", render_report(signature, finding, case, outcomes, infos).encode())


def add_occurrence(folder: Path, occurrence: dict[str, Any]) -> None:
    """Append one line per sighting; a line is small enough to be written whole."""
    with open(folder / "occurrences.jsonl", "a") as handle:
        handle.write(json.dumps(occurrence, sort_keys=True) + "\n")


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        np.savez(handle, **arrays)
    temporary.replace(path)


def render_report(
    signature: str, finding: Finding, case: TestCase, outcomes: dict[str, Outcome], infos: dict[str, BackendInfo]
) -> str:
    """Markdown ready to paste into the affected project's tracker."""
    backend = finding.backend
    ops = ", ".join(case.graph.op_types())
    if finding.symptom == "mismatch" and finding.discrepancy:
        measures = finding.discrepancy.measures
        title = f"[{PROJECT.get(backend, backend)}] wrong result for a graph of {ops}"
        symptom = (
            f"Output `{finding.discrepancy.output}` differs from {finding.against} "
            f"({finding.discrepancy.reason}): " + ", ".join(f"{k} = {v}" for k, v in measures.items())
        )
    else:
        outcome = finding.outcome or Outcome("error")
        title = f"[{PROJECT.get(backend, backend)}] {outcome.exc_type or finding.symptom} in {outcome.phase} on {ops}"
        symptom = f"{finding.symptom} in phase `{outcome.phase}`: `{outcome.exc_type}: {outcome.message}`"
    versions = "\n".join(f"- {info.name}: {info.version}" for info in infos.values())
    details = (finding.outcome.details if finding.outcome else "")[-3000:]
    sections = [
        f"# {title}",
        f"Signature: `{signature}`",
        "## Environment\n" + versions + f"\n- Python {platform.python_version()} on {platform.machine()}",
        "## Symptom\n" + symptom,
        "## Graph\n```\n" + case.graph.text() + "\n```",
        "## Reproduce\n`python repro.py` (needs only the affected system; exits 1 while the bug is present).",
    ]
    if details:
        sections.append("## Log\n```\n" + details + "\n```")
    sections.append("Found by dlfuzz, a differential fuzzer for deep-learning compilers.")
    return "\n\n".join(sections) + "\n"


def render_repro(finding: Finding, case: TestCase, infos: dict[str, BackendInfo]) -> str:
    """A script that needs only the affected system and the files beside it."""
    frontend = infos[finding.backend].frontend if finding.backend in infos else "onnx"
    rtol, atol = TOLERANCES["float32"]
    run = _RUNNERS.get(finding.backend)
    if frontend != "onnx" or run is None:
        return _GENERIC_REPRO
    return _ONNX_REPRO.format(run=run, rtol=rtol, atol=atol)


_ONNX_REPRO = '''"""Reproducer written by dlfuzz. Exit 1: the bug is present; exit 0: fixed."""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
inputs = dict(np.load(HERE / "inputs.npz"))
model_path = str(HERE / "model.onnx")
{run}
try:
    actual = run_model()
except Exception as error:  # the crash this report is about
    print(f"crash: {{type(error).__name__}}: {{error}}"[:2000])
    sys.exit(1)
expected_file = HERE / "expected.npz"
if not expected_file.exists():
    print("ran without error: fixed")
    sys.exit(0)
expected = dict(np.load(expected_file))
bad = False
for name, want in expected.items():
    got = np.asarray(actual[name])
    if got.shape != want.shape or not np.allclose(got, want, rtol={rtol}, atol={atol}, equal_nan=True):
        print(f"{{name}}: expected {{want.ravel()[:8]}}, got {{got.ravel()[:8]}}")
        bad = True
print("mismatch reproduced" if bad else "outputs agree: fixed")
sys.exit(1 if bad else 0)
'''

_RUNNERS = {
    "ort": """
def run_model():
    import onnx
    import onnxruntime as ort
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in onnx.load(model_path).graph.output]
    return dict(zip(names, session.run(names, inputs)))
""",
    "tvm": """
def run_model():
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx
    model = onnx.load(model_path)
    mod = from_onnx(model, keep_params_in_input=False)
    passes = ["DecomposeOpsForInference", "FoldConstant", "LegalizeOps", "AnnotateTIROpPattern",
              "FoldConstant", "FuseOps", "FuseTIR", "DeadCodeElimination"]
    with tvm.transform.PassContext(opt_level=3):
        mod = tvm.transform.Sequential([getattr(relax.transform, p)() for p in passes])(mod)
        executable = tvm.compile(mod, target="llvm")
    vm = relax.VirtualMachine(executable, tvm.cpu())
    args = [tvm.runtime.tensor(inputs[i.name]) for i in model.graph.input]
    result = vm["main"](*args)
    results = [result] if hasattr(result, "numpy") else list(result)
    return {o.name: r.numpy() for o, r in zip(model.graph.output, results)}
""",
}

_GENERIC_REPRO = '''"""Reproducer written by dlfuzz: rerun the case with `dlfuzz run .` (needs dlfuzz installed)."""
import subprocess
import sys
from pathlib import Path

sys.exit(subprocess.call(["dlfuzz", "run", str(Path(__file__).resolve().parent)]))
'''
