from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fuzzer.cli import main
from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.core.testcase import TestCase
from fuzzer.judge.compare import Finding, judge
from fuzzer.judge.rounding import refine
from fuzzer.report.bug import COMPACT_KEYS, FULL_OCCURRENCES, add_occurrence, title, write_bug
from fuzzer.report.campaign import load_campaign, render_summary
from fuzzer.report.picture import graph_svg
from fuzzer.report.repro import run_repro, write_repro
from oracles.base import BackendInfo, Outcome
from oracles.worker import ChildWorker
from specs.interpret import evaluate
from tests.processes import descendants, survivors

INFOS = {
    "eager": BackendInfo("eager", "torch", True, "2", "x"),
    "ort-noopt": BackendInfo("ort-noopt", "onnx", True, "1", "x"),
    "ort": BackendInfo("ort", "onnx", False, "1", "x"),
    "tvm": BackendInfo("tvm", "onnx", False, "0.27", "x"),
    "inductor": BackendInfo("inductor", "torch", False, "2", "x"),
}
MATRIX = TensorType((2, 3), "float32")


def small_case() -> TestCase:
    graph = Graph(
        ["x"],
        ["w"],
        [Node("Add", ["x", "w"], ["s"]), Node("Sigmoid", ["s"], ["y"])],
        ["y"],
        {"x": MATRIX, "w": MATRIX, "s": MATRIX, "y": MATRIX},
    )
    values = {"x": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), "w": np.ones((2, 3), np.float32)}
    return TestCase(graph, values, {"id": "000007", "seed": 7})


def planted_mismatch(case: TestCase, backend: str):
    """Outcomes in which `backend` is off by 0.5: what a miscompilation looks like."""
    reference = evaluate(case.graph, case.values)["y"].numpy()
    outcomes = {name: Outcome("ok", {"y": reference}) for name in ("eager", "ort-noopt")}
    outcomes[backend] = Outcome("ok", {"y": reference + np.float32(0.5)})
    infos = {name: INFOS[name] for name in outcomes}
    verdict = refine(case, outcomes, judge(outcomes, infos), infos)
    return outcomes, verdict.findings[0], infos


def test_graph_picture_is_svg_with_a_box_per_leaf_node_and_output() -> None:
    root = ElementTree.fromstring(graph_svg(small_case().graph))
    rects = root.findall("{http://www.w3.org/2000/svg}rect")
    lines = root.findall("{http://www.w3.org/2000/svg}line")
    assert len(rects) == 2 + 2 + 1 and len(lines) == 4


@pytest.mark.parametrize("backend", ["ort", "tvm", "inductor"])
def test_repro_runs_isolated_exits_0_on_a_correct_system_and_1_while_the_bug_shows(
    tmp_path: Path, backend: str
) -> None:
    case = small_case()
    outcomes, finding, infos = planted_mismatch(case, backend)
    meta = write_bug(tmp_path, "sig", finding, case, outcomes, infos)
    # the real system computes this graph right, so the planted mismatch does not reproduce
    assert meta["repro"]["exit_code"] == 0 and meta["repro"]["reproduced"] is False, meta["repro"]["output"]
    expected = json.loads((tmp_path / "expected.json").read_text())
    expected["y"]["truth"] = [v + 0.5 for v in expected["y"]["truth"]]  # now the system looks wrong
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    again = run_repro(tmp_path, backend, "mismatch")
    assert again["exit_code"] == 1 and again["reproduced"], again["output"]
    assert "flat index" in again["output"]
    if backend == "inductor":
        assert "numpy" not in (tmp_path / "repro.py").read_text(), "torch alone must do"


def test_tvm_repro_reads_shape_valued_outputs(tmp_path: Path) -> None:
    """Relax returns Shape as a shape value and Squeeze(Shape) as an int: the repro reads both."""
    shape, scalar = TensorType((1,), "int64"), TensorType((), "int64")
    squeeze = Node("Squeeze", ["s"], ["y"], {"axes": [0], "onnx_axes": [0]})
    nodes = [Node("Shape", ["x"], ["s"], {"start": None, "end": None}), squeeze]
    graph = Graph(["x"], [], nodes, ["s", "y"], {"x": TensorType((5,), "float32"), "s": shape, "y": scalar})
    case = TestCase(graph, {"x": np.zeros(5, np.float32)}, {"id": "000001", "seed": 1})
    right = {"s": np.array([5]), "y": np.array(5)}
    outcomes = {name: Outcome("ok", right) for name in ("eager", "ort-noopt")}
    outcomes["tvm"] = Outcome("ok", {"s": right["s"], "y": np.array(6)})
    infos = {name: INFOS[name] for name in outcomes}
    finding = refine(case, outcomes, judge(outcomes, infos), infos).findings[0]
    meta = write_bug(tmp_path, "sig", finding, case, outcomes, infos)
    assert meta["repro"]["exit_code"] == 0, meta["repro"]["output"]  # TVM gets this graph right
    (tmp_path / "inputs.npz").unlink()
    broken = run_repro(tmp_path, "tvm", "mismatch")
    assert broken["exit_code"] == 2 and not broken["reproduced"], "an error is not the wrong result reported"


def test_a_repro_of_a_death_exits_1_itself_rather_than_dying(tmp_path: Path) -> None:
    """Exit status 1 while the bug is present holds for a process-killing bug too."""
    died = Finding("ort", "died", outcome=Outcome("died", phase="run", exc_type="SIGFPE", message="ended"))
    write_repro(tmp_path, died, small_case(), None)
    source = (tmp_path / "repro.py").read_text()
    fatal = "def run_model():\n    os.kill(os.getpid(), signal.SIGFPE)\n"
    (tmp_path / "repro.py").write_text(source.replace("def run_model():\n", fatal, 1))
    done = subprocess.run([sys.executable, "repro.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "bug present" in done.stdout and "SIGFPE" in done.stdout, done
    assert run_repro(tmp_path, "ort", "died")["reproduced"]


def _no_state() -> tuple[None, str]:
    return None, "ready"


def _run_repro(state: None, stage: object, folder: Path) -> dict:
    return run_repro(folder, "ort", "timeout")


def test_a_reproducer_ends_with_the_process_that_runs_it(tmp_path: Path) -> None:
    (tmp_path / "repro.py").write_text("import time\ntime.sleep(600)\n")  # a hang's reproducer
    runner = ChildWorker(_no_state, "repro runner", ("repro",), None, 60)
    try:
        runner.submit(_run_repro, tmp_path)
        while not (tree := descendants(runner._process.pid)):
            time.sleep(0.05)
        os.kill(runner._process.pid, signal.SIGKILL)
        assert not survivors(tree, 5)
    finally:
        runner.close()


def test_report_has_title_versions_measures_graph_picture_and_repro_status(tmp_path: Path) -> None:
    case = small_case()
    outcomes, finding, infos = planted_mismatch(case, "ort")
    write_bug(tmp_path, "ort-mismatch-Add+Sigmoid-x", finding, case, outcomes, infos)
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# [ONNX Runtime] wrong result for a graph of Add, Sigmoid")
    for part in ("## Environment", "ONNX Runtime 1 (the system at fault)", "| reference | float64 | actual |"):
        assert part in report
    assert "![graph](graph.svg)" in report and "Sigmoid(s)" in report and "did **not** reproduce" in report
    assert "ort: " in report and "← the system at fault" in report
    for name in ("case.json", "values.npz", "model.onnx", "inputs.npz", "meta.json", "repro.py", "graph.svg"):
        assert (tmp_path / name).is_file(), name


def test_a_bug_seen_many_times_keeps_its_first_findings_whole_and_counts_every_sighting(tmp_path: Path) -> None:
    case = small_case()
    outcomes, finding, infos = planted_mismatch(case, "ort")
    folder = tmp_path / "bugs" / "ort-bug"
    write_bug(folder, "ort-bug", finding, case, outcomes, infos)
    sightings = 300
    for index in range(sightings):
        add_occurrence(folder, {"case": f"{index:06d}", "seed": index, "finding": finding.to_json()})
    lines = [json.loads(text) for text in (folder / "occurrences.jsonl").read_text().splitlines()]
    assert [line["case"] for line in lines] == [f"{index:06d}" for index in range(sightings)]
    assert all("finding" in line for line in lines[:FULL_OCCURRENCES])
    assert all(set(line) == set(COMPACT_KEYS) for line in lines[FULL_OCCURRENCES:])
    assert f"Seen {sightings} time(s)" in (folder / "report.md").read_text()
    (tmp_path / "summary.json").write_text(json.dumps({"cases": sightings}))
    (bug,) = load_campaign(tmp_path).bugs
    assert bug.seen == sightings


def test_campaign_summary_lists_new_bugs_first_and_marks_known_ones_with_links(tmp_path: Path) -> None:
    case = small_case()
    for backend in ("ort", "tvm"):
        outcomes, finding, infos = planted_mismatch(case, backend)
        write_bug(tmp_path / "bugs" / f"{backend}-bug", f"{backend}-bug", finding, case, outcomes, infos)
    known = {"ort-bug": "ort-kept-case", "inductor-gone": "inductor-kept-case"}
    (tmp_path / "summary.json").write_text(json.dumps({"cases": 3, "bugs": 1, "known": known}))
    lines = [{"id": "0", "bugs": [], "known": ["ort-bug"]}, {"id": "1", "bugs": ["tvm-bug"]}]
    (tmp_path / "stats.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    campaign = load_campaign(tmp_path)
    assert [bug.signature for bug in campaign.bugs] == ["tvm-bug", "ort-bug", "inductor-gone"]
    assert [bug.known for bug in campaign.bugs] == [None, "ort-kept-case", "inductor-kept-case"]
    summary = render_summary(campaign)
    assert summary.startswith("# dlfuzz campaign: 1 new bug(s), 2 known")
    new, known = summary.split("## Known bugs")
    assert "(bugs/tvm-bug/report.md)" in new and "ort-bug" not in new
    assert "(bugs/ort-bug/report.md) (known: corpus/ort-kept-case)" in known and "`inductor-gone`" in known


def test_report_command_rerenders_a_bug_folder_or_a_campaign_and_rejects_others(tmp_path: Path) -> None:
    case = small_case()
    outcomes, finding, infos = planted_mismatch(case, "ort")
    folder = tmp_path / "bugs" / "ort-bug"
    write_bug(folder, "ort-bug", finding, case, outcomes, infos)
    (folder / "report.md").unlink()
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0 and (folder / "report.md").read_text().startswith("# [ONNX Runtime]")
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 0 and "(bugs/ort-bug/report.md)" in (tmp_path / "report.md").read_text()
    result = CliRunner().invoke(main, ["report", str(folder / "original")])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["report", str(tmp_path / "bugs")])
    assert result.exit_code == 2 and "neither a bug folder" in result.output


def test_a_mismatch_in_a_readout_is_titled_by_what_was_read() -> None:
    meta = {"project": "PyTorch (TorchInductor)", "symptom": "mismatch", "ops": ["Sigmoid"]}
    assert title({**meta, "finding": {"discrepancy": {"output": "grad:x0"}}}).startswith(
        "[PyTorch (TorchInductor)] wrong gradients for"
    )
    assert "wrong result on a second shape" in title({**meta, "finding": {"discrepancy": {"output": "shape2:t1"}}})
    assert "] wrong result for" in title({**meta, "finding": {"discrepancy": {"output": "t1"}}})
