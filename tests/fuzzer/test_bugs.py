from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fuzzer.attribute import examine
from fuzzer.bugs import file_findings
from fuzzer.testcase import TestCase
from oracles.session import OracleSession
from tests.fuzzer.conftest import FAULTY, cases_with_sigmoid
from tests.fuzzer.handmade import build, float32


def test_one_folder_per_root_cause_listing_every_occurrence(tmp_path: Path, planted_session: OracleSession) -> None:
    first, second = cases_with_sigmoid(2)
    assert first.graph.dumps() != second.graph.dumps()
    filed = []
    for case in (first, second):
        outcomes, verdict = examine(planted_session, case)
        filed.append(file_findings(tmp_path, case, outcomes, verdict, planted_session, reduce_budget=60))
    assert filed[0] == filed[1] and len(filed[0]) == 2, "a crash and a mismatch, both seen twice"
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2
    assert folders[0].startswith("crash-sigmoid-crash-run-RuntimeError-")
    assert folders[1].startswith("wrong-sigmoid-mismatch-Sigmoid-")
    for folder in folders:
        lines = (tmp_path / folder / "occurrences.jsonl").read_text().splitlines()
        assert [json.loads(line)["case"] for line in lines] == [first.meta["id"], second.meta["id"]]
        meta = json.loads((tmp_path / folder / "meta.json").read_text())
        assert meta["nodes"] == 1 and meta["reduction"]["original_nodes"] == len(first.graph.nodes)
        assert "Seen 2 time(s)" in (tmp_path / folder / "report.md").read_text()
        assert (tmp_path / folder / "original" / "case.json").is_file()


def test_without_a_reduction_budget_cases_are_filed_as_found(tmp_path: Path, planted_session: OracleSession) -> None:
    case = cases_with_sigmoid(1)[0]
    outcomes, verdict = examine(planted_session, case)
    signatures = file_findings(tmp_path, case, outcomes, verdict, planted_session, reduce_budget=0)
    mismatch = next(s for s in signatures if s.startswith("wrong-sigmoid"))
    assert mismatch.startswith("wrong-sigmoid-mismatch-" + "+".join(case.graph.op_types())[:20])
    meta = json.loads((tmp_path / mismatch / "meta.json").read_text())
    assert meta["nodes"] == len(case.graph.nodes) and meta["reduction"] is None


def test_a_crash_caused_by_an_upstream_wrong_value_is_filed_under_that_value(tmp_path: Path) -> None:
    graph = build({"x": float32(3)}, [("Sigmoid", ["x"], {}), ("Relu", ["t0"], {}), ("Neg", ["t1"], {})])
    case = TestCase(graph, {"x": np.array([0.5, -1.0, 2.0], np.float32)}, {"id": "000007", "seed": 7})
    with OracleSession(["eager", "ort-noopt", f"{FAULTY}:Float64Sigmoid"], timeout=60) as session:
        outcomes, verdict = examine(session, case)
        assert [f.symptom for f in verdict.findings] == ["crash"]
        (sig,) = file_findings(tmp_path, case, outcomes, verdict, session, reduce_budget=60)
    assert sig.startswith("float64-sigmoid-mismatch-Sigmoid-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aliases.json", sig]
    (line,) = (tmp_path / sig / "occurrences.jsonl").read_text().splitlines()
    crash = json.loads(line)["downstream_crash"]
    assert crash.startswith("float64-sigmoid-crash-run-TypeError-")
    assert json.loads((tmp_path / "aliases.json").read_text()) == {crash: sig}
