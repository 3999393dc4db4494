"""Bug folders and their Markdown: report.md ready for the affected project's tracker."""

from __future__ import annotations

import itertools
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from fuzzer.core.files import append_line, npz_bytes, write_atomic
from fuzzer.core.testcase import TestCase
from fuzzer.inputs.readouts import READOUTS, Readout, readouts_of
from fuzzer.judge.compare import ORIGINAL, Finding
from fuzzer.judge.rounding import RoundingEstimate, estimate_rounding
from fuzzer.report.picture import graph_svg
from fuzzer.report.repro import EXPECTED, MODEL, REPRO, expected_outputs, has_repro, run_repro, write_repro
from fuzzer.triage.filing import FILED, Filing
from fuzzer.triage.signature import culprit
from oracles.backends.metamorphic import REWRITE, equivalent_case
from oracles.backends.tvm_passes import PASSES
from oracles.base import BackendInfo, Outcome
from oracles.registry import plain_system
from specs.equivalences import EQUIVALENCES
from specs.lowering import to_onnx

PROJECT = {"ort": "ONNX Runtime", "tvm": "Apache TVM", "inductor": "PyTorch (TorchInductor)"}
META, REPORT, OCCURRENCES, PICTURE = FILED, "report.md", "occurrences.jsonl", "graph.svg"
EQUIVALENT = "equivalent"  # a metamorphic finding's equivalent graph: case folder and .onnx
FULL_OCCURRENCES = 20  # sightings of a bug written whole; later ones keep only COMPACT_KEYS
COMPACT_KEYS = ("case", "seed")  # what a later sighting keeps: enough to count it and to roll it back
LISTED_OCCURRENCES = 30  # sightings report.md names; the rest it counts


class ReportError(ValueError):
    """A folder that is neither a bug folder nor a campaign; the message says which was expected."""


def write_bug(
    folder: Path,
    signature: str,
    finding: Finding,
    case: TestCase,
    outcomes: dict[str, Outcome],
    infos: dict[str, BackendInfo],
    reduction: dict[str, Any] | None = None,
    original: TestCase | None = None,
    guilt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a bug folder for a new signature, run its repro.py once, and return its meta."""
    folder.mkdir(parents=True, exist_ok=True)
    case.save(folder)
    if original is not None and original.graph.dumps() != case.graph.dumps():
        original.save(folder / "original")
    write_atomic(folder / MODEL, to_onnx(case.graph, case.weights).SerializeToString())
    write_atomic(folder / "inputs.npz", npz_bytes(case.inputs))
    write_atomic(folder / PICTURE, graph_svg(case.graph).encode())
    rewrite = outcomes[finding.backend].drawn.get(REWRITE) if finding.backend in outcomes else None
    equivalent = equivalent_case(TestCase(case.graph, case.values, case.meta | {REWRITE: rewrite})) if rewrite else None
    if equivalent is not None:
        equivalent.save(folder / EQUIVALENT)
        onnx_model = to_onnx(equivalent.graph, equivalent.weights).SerializeToString()
        write_atomic(folder / f"{EQUIVALENT}.onnx", onnx_model)
    readouts = readouts_of(case, infos[finding.backend].readouts) if finding.backend in infos else []
    estimate = _estimate(finding, case, readouts)
    meta: dict[str, Any] = {
        "signature": signature,
        "backend": finding.backend,
        "project": PROJECT.get(plain_system(finding.backend), finding.backend),
        "symptom": finding.symptom,
        "culprit": culprit(finding.outcome) if finding.outcome else "",
        "finding": finding.to_json(),
        "ops": case.graph.op_types(),
        "nodes": len(case.graph.nodes),
        "versions": {name: info.version for name, info in infos.items()},
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "onnx": onnx.__version__,
            "numpy": np.__version__,
        },
        "case": case.meta,
        "reduction": reduction,
        "guilt": guilt,
        "rewrite": rewrite and rewrite | {"why": EQUIVALENCES[rewrite["equivalence"]].why},
        "error": finding.outcome.details[-4000:] if finding.outcome else "",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if estimate is not None:
        meta["comparison"] = _comparison(finding, case, outcomes, infos, estimate)
    if has_repro(finding.backend):
        expected = expected_outputs(estimate) if estimate else None
        model = f"{EQUIVALENT}.onnx" if equivalent is not None else MODEL  # the graph that shows the bug
        write_repro(folder, finding, equivalent or case, expected, model, readouts)
        meta["repro"] = run_repro(folder, finding.backend, finding.symptom)
    else:
        write_atomic(folder / REPRO, _DLFUZZ_REPRO.encode())
        meta["repro"] = {"reproduced": None, "note": "no standalone reproducer for this backend; needs dlfuzz"}
    write_atomic(folder / META, json.dumps(meta, indent=1, sort_keys=True, default=str).encode())
    write_atomic(folder / REPORT, render_report(folder).encode())
    return meta


def record_filing(folder: Path, filing: Filing) -> None:
    """What triage filed, on disk: the bug folder when it is new, then the sighting."""
    if not (folder / META).exists():
        write_bug(
            folder,
            filing.signature,
            filing.finding,
            filing.case,
            filing.outcomes,
            filing.infos,
            filing.reduction,
            original=filing.original,
            guilt=filing.guilt,
        )
    add_occurrence(folder, filing.occurrence)


def add_occurrence(folder: Path, occurrence: dict[str, Any]) -> None:
    """Append one line per sighting (a line is written whole) and refresh the report's list. The first
    FULL_OCCURRENCES keep their finding; later ones only their case, so a bug seen 10,000 times costs
    10,000 short lines, not 10,000 findings, and is still counted and rolled back by case."""
    path = folder / OCCURRENCES
    whole = sightings(path) < FULL_OCCURRENCES
    append_line(path, occurrence if whole else {key: occurrence[key] for key in COMPACT_KEYS})
    if (folder / META).exists():
        write_atomic(folder / REPORT, render_report(folder).encode())


def _estimate(finding: Finding, case: TestCase, readouts: Sequence[Readout]) -> RoundingEstimate | None:
    if finding.symptom != "mismatch":
        return None
    try:
        return estimate_rounding(case, readouts)
    except Exception:  # eager cannot widen this graph; the report falls back to the fixed tolerance
        return None


def _comparison(
    finding: Finding,
    case: TestCase,
    outcomes: dict[str, Outcome],
    infos: dict[str, BackendInfo],
    estimate: RoundingEstimate,
) -> dict[str, Any]:
    """Expected vs actual at the worst element: reference, float64, the system, and the allowance."""
    outcome = outcomes.get(finding.backend)
    actual = (outcome.outputs or {}) if outcome else {}
    reference = (outcomes[finding.against].outputs or {}) if finding.against in outcomes else {}
    if outcome and outcome.baseline is not None and finding.against == ORIGINAL:
        reference = outcome.baseline
    rows = []
    for name, truth in estimate.truth.items():
        got = actual.get(name)
        if got is None or np.shape(got) != truth.shape or truth.size == 0:
            continue
        error = np.abs(np.asarray(got, np.float64) - truth.astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(error == 0, 0.0, np.nan_to_num(error / estimate.allowed[name], nan=np.inf))
        worst = np.unravel_index(int(np.argmax(ratio)), truth.shape) if truth.ndim else ()
        rows.append(
            {
                "output": name,
                "index": [int(i) for i in worst],
                "reference": np.asarray(reference[name])[worst].item() if name in reference else None,
                "float64": truth[worst].item(),
                "actual": np.asarray(got)[worst].item(),
                "abs_error": float(error[worst]),
                "allowed": float(estimate.allowed[name][worst]),
                "excess": float(ratio[worst]),
                "elements_beyond_rounding": int((ratio > 1).sum()),
                "elements": int(truth.size),
            }
        )
    return {"reference": finding.against, "rows": rows, "infos": {n: infos[n].reference for n in outcomes}}


def title(meta: dict[str, Any]) -> str:
    finding, ops = meta["finding"], ", ".join(meta["ops"])
    project = meta["project"]
    guilt = meta.get("guilt") or {}
    by = f" by {guilt['label']}" if guilt.get("complete") else ""
    if meta["symptom"] == "mismatch":
        kind, colon, _ = str(finding.get("discrepancy", {}).get("output", "")).partition(":")
        what = READOUTS[kind].wrong if colon and kind in READOUTS else "wrong result"
        return f"[{project}] {what}{by} for a graph of {ops}"
    where = f" ({meta['culprit']})" if meta.get("culprit") else ""
    return f"[{project}] {finding.get('exc_type') or meta['symptom']} in {finding.get('phase')}{where}{by} on {ops}"


def render_report(folder: Path) -> str:
    """report.md from the files of a bug folder, so `dlfuzz report` can render it again."""
    meta = json.loads((folder / META).read_text())
    case = TestCase.load(folder)
    finding = meta["finding"]
    backend = meta["backend"]
    versions = meta["versions"]
    sections = [
        f"# {title(meta)}",
        "## Environment\n"
        + f"- {meta['project']} {versions.get(backend, '?')} (the system at fault)\n"
        + "".join(f"- {name}: {version}\n" for name, version in sorted(versions.items()) if name != backend)
        + f"- onnx {meta['environment']['onnx']}, numpy {meta['environment']['numpy']}\n"
        + f"- Python {meta['environment']['python']} on {meta['environment']['platform']}",
        "## Symptom\n" + _symptom(meta),
        "## Minimal graph\n"
        + f"{meta['nodes']} node(s), found by dlfuzz and reduced automatically{_reduction_text(meta)}.\n\n"
        + f"![graph]({PICTURE})\n\n```\n{case.graph.text()}\n```\n\n"
        + "`model.onnx` holds this graph (opset 18, weights as initializers); `inputs.npz` its inputs."
        + _trigger_text(meta)
        + _guilt_text(meta)
        + _passes_text(meta)
        + _rewrite_text(meta, folder),
        "## Reproduce\n" + _repro_text(meta, folder),
        "## Occurrences\n" + _occurrences(folder),
    ]
    log = meta.get("error") or finding.get("message") or ""
    if meta["symptom"] != "mismatch" and log:
        sections.append("## Error (end of the traceback)\n```\n" + log[-3000:].strip() + "\n```")
    sections.append(f"Signature `{meta['signature']}`. Found by dlfuzz, a differential fuzzer for DL compilers.")
    return "\n\n".join(sections) + "\n"


def _symptom(meta: dict[str, Any]) -> str:
    finding = meta["finding"]
    if meta["symptom"] != "mismatch":
        return (
            f"{meta['symptom']} in phase `{finding.get('phase')}`: "
            f"`{finding.get('exc_type')}: {finding.get('message')}`"
            f"\n\nThe references (PyTorch eager and ONNX Runtime without graph optimizations) run this model fine."
        )
    discrepancy = finding.get("discrepancy", {})
    against = finding.get("against")
    metamorphic = against == ORIGINAL
    compared = f"{meta['backend']}'s own result on the original graph" if metamorphic else f"the reference `{against}`"
    lines = [
        f"Output `{discrepancy.get('output')}` differs from {compared} "
        f"({discrepancy.get('reason')}): "
        + ", ".join(f"{k} = {v}" for k, v in discrepancy.items() if k not in ("output", "reason")),
    ]
    comparison = meta.get("comparison")
    if comparison and comparison["rows"] and discrepancy.get("reason") == "values":
        lines.append(
            "\nExpected vs actual at the worst element, with the float64 result (torch eager in float64) and the "
            "deviation that float32 rounding, amplified by this graph, can explain:\n\n"
            f"| output | index | {'on the original' if metamorphic else 'reference'} | float64 | actual | abs error "
            "| rounding allows | elements beyond |\n"
            "|---|---|---|---|---|---|---|---|"
        )
        for row in comparison["rows"]:
            lines.append(
                f"| `{row['output']}` | {row['index']} | {_num(row['reference'])} | {_num(row['float64'])} | "
                f"{_num(row['actual'])} | {_num(row['abs_error'])} | {_num(row['allowed'])} | "
                f"{row['elements_beyond_rounding']} of {row['elements']} |"
            )
    attribution = finding.get("attribution") or {}
    if discrepancy.get("reason") != "values":
        lines.append(f"\nThe output's {discrepancy.get('reason')} is wrong; the references get it right.")
    elif "excess_by_backend" in attribution:
        lines.append(
            "\nDistance from the float64 result, in units of the rounding allowance (≤ 1: explained by rounding):\n"
        )
        for name, excess in sorted(attribution["excess_by_backend"].items()):
            lines.append(f"- {name}: {excess}{' ← the system at fault' if name == meta['backend'] else ''}")
        if "excess_on_original" in attribution:
            lines.append(f"- {meta['backend']} on the original graph: {attribution['excess_on_original']}")
        agrees = ", ".join(attribution.get("agrees_with") or []) or "no other backend"
        lines.append(f"\n{meta['backend']} agrees with: {agrees}.")
    elif attribution.get("estimate"):
        lines.append(f"\n({attribution['estimate']}; judged by the fixed tolerance only.)")
    return "\n".join(lines)


def _num(value: Any) -> str:
    return f"{value:.7g}" if isinstance(value, float) else str(value)


def _reduction_text(meta: dict[str, Any]) -> str:
    reduction = meta.get("reduction")
    if not reduction:
        return " (not reduced)"
    budget = "" if reduction["complete"] else ", stopped by its time budget"
    return (
        f" from {reduction['original_nodes']} nodes in {reduction['seconds']} s and {reduction['checks']} checks"
        f"{budget}; the original case is in `original/`"
        if reduction["original_nodes"] != reduction["nodes"]
        else f" (already minimal: {reduction['checks']} checks)"
    )


def _trigger_text(meta: dict[str, Any]) -> str:
    triggers = (meta.get("reduction") or {}).get("triggers")
    if not triggers:
        return ""
    named = ", ".join(f"`{t}`" for t in triggers)
    return (
        f"\n\nWhat triggers it: {named}. The failure goes away when that is made plain (an attribute simpler"
        " or left out; for `broadcast`, inputs given the full shape they broadcast to), and every other"
        " graph it shows in is filed here too."
    )


def _guilt_text(meta: dict[str, Any]) -> str:
    guilt = meta.get("guilt")
    if not guilt:
        return ""
    stages = " → ".join(f"**{s}**" if i == guilt["stage_index"] - 1 else s for i, s in enumerate(guilt["stages"]))
    needs = ", ".join(f"`{s}`" for s in guilt["switches"])
    text = (
        f"\n\nWhere it comes in: {stages}; the failure first shows with `{guilt['stage']}` "
        f"(stage {guilt['stage_index']} of {len(guilt['stages'])})"
    )
    text += f", and leaving out {needs} alone cures it." if needs else ", and no single switch left out cures it."
    if not guilt["complete"]:
        text += f" The search stopped by its time budget after {guilt['checks']} checks."
    return text


def _passes_text(meta: dict[str, Any]) -> str:
    """The pass list the case runs, where it was drawn and reduced with the graph (tvm-passes)."""
    passes = meta["case"].get(PASSES)
    if passes is None:
        return ""
    listed = " → ".join(f"`{name}`" for name in passes) or "none (the build alone)"
    return f"\n\nPasses run before the build, reduced with the graph to the fewest that still fail: {listed}."


def _rewrite_text(meta: dict[str, Any], folder: Path) -> str:
    """A metamorphic finding's equivalent graph, and the rewrite that made it from the one above."""
    rewrite = meta.get("rewrite")
    if not rewrite or not (folder / EQUIVALENT).exists():
        return ""
    equivalent = TestCase.load(folder / EQUIVALENT)
    return (
        f"\n\n### Equivalent graph\nThe graph above with `{rewrite['equivalence']}` applied at "
        f"`{rewrite['site']}` ({rewrite['why']}), which keeps every output exactly; {meta['project']} must compute "
        f"both alike. `{EQUIVALENT}.onnx` holds it, and `repro.py` runs it.\n\n```\n{equivalent.graph.text()}\n```"
    )


def _repro_text(meta: dict[str, Any], folder: Path) -> str:
    repro = meta.get("repro") or {}
    if repro.get("reproduced") is None:
        return f"`python {REPRO}` reruns the case through dlfuzz ({repro.get('note', 'needs dlfuzz')})."
    status = (
        f"When written, `repro.py` **reproduced** the bug in a fresh interpreter ({repro['isolation']}): "
        f"exit {repro['exit_code']} in {repro['seconds']} s."
        if repro["reproduced"]
        else f"When written, `repro.py` did **not** reproduce the bug (exit {repro['exit_code']}); output below."
    )
    files = (
        "`model.onnx`, `inputs.npz`"
        if plain_system(meta["backend"]) != "inductor"
        else "`inputs.pt` (inputs and constants)"
    )
    if (folder / EXPECTED).exists():
        files += f", `{EXPECTED}` (float64 result and allowed deviation per element)"
    script = (folder / REPRO).read_text()
    return (
        f"`python {REPRO}` exits 1 while the bug is present and 0 once it is fixed. It reads {files}.\n\n"
        f"{status}\n\n```\n{repro.get('output', '')[-1500:]}\n```\n\n"
        f"<details><summary>repro.py</summary>\n\n```python\n{script}```\n\n</details>"
    )


def sightings(path: Path) -> int:
    """How many sightings an occurrences file holds whole (a line cut off by a kill has no newline)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _occurrences(folder: Path) -> str:
    path = folder / OCCURRENCES
    seen = sightings(path)
    if not seen:
        return "Seen once (the case above)."
    with open(path) as handle:
        listed = [json.loads(line) for line in itertools.islice(handle, min(seen, LISTED_OCCURRENCES))]
    named = ", ".join(f"{o.get('case')} (seed {o.get('seed')})" for o in listed)
    more = f" and {seen - len(listed)} more" if seen > len(listed) else ""
    return f"Seen {seen} time(s) in the campaign: {named}{more}."


_DLFUZZ_REPRO = '''"""Reproducer written by dlfuzz for a backend without a standalone one: reruns the case."""
import subprocess
import sys
from pathlib import Path

sys.exit(subprocess.call(["dlfuzz", "run", str(Path(__file__).resolve().parent)]))
'''
