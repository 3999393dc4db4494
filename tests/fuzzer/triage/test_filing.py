from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.sampling import case_uncomparable
from fuzzer.judge import judge_case
from fuzzer.report.bug import record_filing
from fuzzer.triage.filing import ALIASES, BugFolders, file_findings, upstream_mismatch
from oracles.session import OracleSession
from tests.fuzzer.conftest import FAULTY, NOOP, cases_with_sigmoid, layernorm_case, reduce_case
from tests.fuzzer.handmade import build, float32

CORPUS = Path(__file__).resolve().parents[3] / "corpus"


def test_one_folder_per_root_cause_listing_every_occurrence(tmp_path: Path, planted_session: OracleSession) -> None:
    first, second = cases_with_sigmoid(2)
    assert first.graph.dumps() != second.graph.dumps()
    filed = []
    for case in (first, second):
        outcomes, verdict = judge_case(planted_session, case, case_uncomparable(case))
        filed.append(file_findings(BugFolders(tmp_path, record_filing), case, outcomes, verdict, planted_session, 60))
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
    outcomes, verdict = judge_case(planted_session, case, case_uncomparable(case))
    signatures = file_findings(BugFolders(tmp_path, record_filing), case, outcomes, verdict, planted_session, 0)
    mismatch = next(s for s in signatures if s.startswith("wrong-sigmoid"))
    assert mismatch.startswith("wrong-sigmoid-mismatch-" + "+".join(case.graph.op_types())[:20])
    meta = json.loads((tmp_path / mismatch / "meta.json").read_text())
    assert meta["nodes"] == len(case.graph.nodes) and meta["reduction"] is None


def test_a_crash_caused_by_an_upstream_wrong_value_is_filed_under_that_value(tmp_path: Path) -> None:
    bugs = tmp_path / "bugs"  # not made yet: the first filing writes aliases.json before any bug folder
    graph = build({"x": float32(3)}, [("Sigmoid", ["x"], {}), ("Relu", ["t0"], {}), ("Neg", ["t1"], {})])
    case = TestCase(graph, {"x": np.array([0.5, -1.0, 2.0], np.float32)}, {"id": "000007", "seed": 7})
    with OracleSession(["eager", "ort-noopt", f"{FAULTY}:Float64Sigmoid"], timeout=60) as session:
        outcomes, verdict = judge_case(session, case, case_uncomparable(case))
        assert [f.symptom for f in verdict.findings] == ["crash"]
        (sig,) = file_findings(BugFolders(bugs, record_filing), case, outcomes, verdict, session, 60)
    assert sig.startswith("float64-sigmoid-mismatch-Sigmoid-")
    assert sorted(p.name for p in bugs.iterdir()) == ["aliases.json", sig]
    (line,) = (bugs / sig / "occurrences.jsonl").read_text().splitlines()
    crash = json.loads(line)["downstream_crash"]
    assert crash.startswith("float64-sigmoid-crash-run-TypeError-")
    assert json.loads((bugs / "aliases.json").read_text()) == {crash: sig}


def test_the_search_for_an_upstream_wrong_value_stops_at_its_budget() -> None:
    # Regression: it judged every prefix of a crash the reduction had left whole, with no budget: a
    # 10-node hang took nine 3 s timeouts and worker restarts to file, past the lane's filing limit.
    graph = build({"x": float32(3)}, [("Sigmoid", ["x"], {}), ("Relu", ["t0"], {}), ("Neg", ["t1"], {})])
    case = TestCase(graph, {"x": np.array([0.5, -1.0, 2.0], np.float32)}, {"id": "000007", "seed": 7})
    with OracleSession(["eager", "ort-noopt", f"{FAULTY}:Float64Sigmoid"], timeout=60) as session:
        _, verdict = judge_case(session, case, case_uncomparable(case))
        (crash,) = verdict.findings
        assert upstream_mismatch(session, case, crash, budget=0) is None
        found = upstream_mismatch(session, case, crash, budget=60)
    assert found is not None and [n.op for n in found[0].graph.nodes] == ["Sigmoid"]


def test_every_face_of_one_triggered_defect_shares_a_folder(tmp_path: Path, faulty_session: OracleSession) -> None:
    mean = dict(NOOP, axes=[1], onnx_axes=[1], noop_with_empty_axes=0)
    cases = [
        reduce_case("ReduceL2", NOOP),
        reduce_case("ReduceSumSquare", NOOP),
        reduce_case("ReduceMean", mean, "int32"),
        layernorm_case((), ()),
        layernorm_case((1, 3), (2, 1)),
    ]
    filed = []
    for case in cases:
        outcomes, verdict = judge_case(faulty_session, case, case_uncomparable(case))
        filed += file_findings(BugFolders(tmp_path, record_filing), case, outcomes, verdict, faulty_session, 60)
    noop, _, int32_mean, broadcast, _ = filed
    assert noop.startswith("reduce-faults-mismatch-Reduce-noop_with_empty_axes-") and filed[1] == noop
    assert int32_mean.startswith("reduce-faults-mismatch-ReduceMean-"), "no trigger: named by its op"
    assert broadcast.startswith("layernorm-crash-crash-run-GroupStatistics-broadcast-") and filed[4] == broadcast
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({ALIASES, *filed})
    aliases = json.loads((tmp_path / ALIASES).read_text())
    assert len(aliases) == 4, "two op types, two exception types"
    assert {aliases[name] for name in aliases if "-mismatch-Reduce" in name} == {noop}
    assert {aliases[name] for name in aliases if "-crash-run-" in name} == {broadcast}
    assert {name.split("-")[4] for name in aliases if "-crash-run-" in name} == {"ValueError", "IndexError"}
    assert "What triggers it: `noop_with_empty_axes`." in (tmp_path / noop / "report.md").read_text()
    assert "What triggers it" not in (tmp_path / int32_mean / "report.md").read_text()


def test_a_known_finding_is_named_but_not_filed(tmp_path: Path, planted_session: OracleSession) -> None:
    case = cases_with_sigmoid(1)[0]
    outcomes, verdict = judge_case(planted_session, case, case_uncomparable(case))
    filed = file_findings(BugFolders(tmp_path / "a", record_filing), case, outcomes, verdict, planted_session, 60)
    assert len(filed) == 2, "a crash and a mismatch"
    again = file_findings(
        BugFolders(tmp_path / "b", record_filing), case, outcomes, verdict, planted_session, 60, set(filed)
    )
    assert again == filed and not (tmp_path / "b").exists()


def test_a_variant_failing_as_its_plain_system_does_is_filed_once_under_the_plain_system(tmp_path: Path) -> None:
    # Regression: a 1-hour campaign filed 20 of TVM's converter crashes a second time as tvm-passes bugs.
    case = TestCase.load(CORPUS / "tvm-prelu-rank0")
    with OracleSession(["eager", "ort-noopt", "tvm", "tvm-passes"], timeout=60) as session:
        outcomes, verdict = judge_case(session, case, case_uncomparable(case))
        assert sorted(f.backend for f in verdict.findings) == ["tvm", "tvm-passes"]
        filed = file_findings(BugFolders(tmp_path, record_filing), case, outcomes, verdict, session, 0)
    assert len(filed) == 2 and filed[0] == filed[1] and filed[0].startswith("tvm")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [filed[0]]
    assert json.loads((tmp_path / filed[0] / "meta.json").read_text())["backend"] == "tvm"
