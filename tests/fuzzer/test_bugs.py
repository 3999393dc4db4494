from __future__ import annotations

import json
from pathlib import Path

from fuzzer.attribute import examine
from fuzzer.bugs import file_findings
from oracles.session import OracleSession
from tests.fuzzer.conftest import cases_with_sigmoid


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
