from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.sampling import case_uncomparable
from fuzzer.judge import judge_case
from fuzzer.report.bug import record_filing
from fuzzer.triage.filing import BugFolders, file_findings
from fuzzer.triage.reduce import Checker, Failure, cut_nodes, pinned, reduce_case, simpler_values
from fuzzer.triage.signature import signature
from oracles.backends.tvm_passes import PASSES
from oracles.session import OracleSession
from specs.interpret import evaluate
from tests.fuzzer.conftest import FAULTY, cases_with_sigmoid
from tests.oracles.faulty_backends import DRAWN_PASSES


def finding_of(session: OracleSession, case, backend: str):
    _, verdict = judge_case(session, case, case_uncomparable(case))
    return next(f for f in verdict.findings if f.backend == backend)


def test_cutting_a_node_feeds_its_readers_the_reference_value() -> None:
    case = cases_with_sigmoid(1)[0]
    known = evaluate(case.graph, case.values)
    first = case.graph.nodes[0]
    reduced = cut_nodes(case, {first.outputs[0]}, known)
    assert first not in reduced.graph.nodes and len(reduced.graph.nodes) < len(case.graph.nodes)
    after = evaluate(reduced.graph, reduced.values)
    for name in reduced.graph.outputs:
        assert np.array_equal(after[name].numpy(), known[name].numpy())
    assert set(reduced.graph.leaves) == {n for node in reduced.graph.nodes for n in node.inputs} - {
        o for node in reduced.graph.nodes for o in node.outputs
    }


def test_simpler_values_move_toward_zero_one_identity_and_off() -> None:
    assert simpler_values(2) == [0, 1] and simpler_values(1) == [0] and simpler_values(0) == []
    assert simpler_values(True) == [False] and simpler_values(-1.5) == [1.0]
    assert simpler_values([2, 0, 1]) == [[1, 1, 1], [0, 1, 2]] and simpler_values("float32") == []


def test_a_planted_crash_reduces_to_the_one_op_with_the_same_signature(planted_session: OracleSession) -> None:
    case = cases_with_sigmoid(1)[0]
    finding = finding_of(planted_session, case, "crash-sigmoid")
    reduction = reduce_case(planted_session, case, finding, budget=120)
    reduced = reduction.case.graph
    assert reduction.complete and reduced.op_types() == ["Sigmoid"] and len(reduced.nodes) == 1
    assert signature(reduction.finding, reduced) == signature(finding, case.graph)
    assert all(t.numel == 1 for t in reduced.types.values()), "shapes shrink to a single element"
    assert reduction.summary()["original_nodes"] == len(case.graph.nodes) >= 6


def test_a_planted_wrong_result_reduces_to_the_one_op(planted_session: OracleSession) -> None:
    case = cases_with_sigmoid(2)[1]
    finding = finding_of(planted_session, case, "wrong-sigmoid")
    reduction = reduce_case(planted_session, case, finding, budget=120)
    assert reduction.case.graph.op_types() == ["Sigmoid"] and reduction.finding.symptom == "mismatch"
    assert signature(reduction.finding, reduction.case.graph).startswith("wrong-sigmoid-mismatch-Sigmoid-")
    assert reduction.finding.attribution["excess"] > 1


def test_an_exhausted_budget_keeps_the_case_and_says_so(planted_session: OracleSession) -> None:
    case = cases_with_sigmoid(1)[0]
    finding = finding_of(planted_session, case, "crash-sigmoid")
    reduction = reduce_case(planted_session, case, finding, budget=0)
    assert not reduction.complete and reduction.case.graph.dumps() == case.graph.dumps()
    assert reduction.finding.backend == "crash-sigmoid"


@pytest.fixture(scope="module")
def passes_session() -> Iterator[OracleSession]:
    with OracleSession(["eager", "ort-noopt", f"{FAULTY}:WrongUnderFoldSigmoid"], timeout=60) as session:
        yield session


def test_a_pass_list_shrinks_with_the_graph_to_the_one_pass_the_failure_needs(
    tmp_path: Path, passes_session: OracleSession
) -> None:
    case = cases_with_sigmoid(1)[0]
    outcomes, verdict = judge_case(passes_session, case, case_uncomparable(case))
    (finding,) = verdict.findings
    configured = pinned(case, outcomes[finding.backend])
    assert configured.meta[PASSES] == list(DRAWN_PASSES) and PASSES not in case.meta
    reduction = reduce_case(passes_session, configured, finding, 60)
    assert reduction.complete and reduction.strategies.get("drop_passes")
    assert reduction.case.meta[PASSES] == ["FoldSigmoid"] and len(reduction.case.graph.nodes) == 1
    (filed,) = file_findings(BugFolders(tmp_path, record_filing), case, outcomes, verdict, passes_session, 60)
    meta = json.loads((tmp_path / filed / "meta.json").read_text())
    assert meta["case"][PASSES] == ["FoldSigmoid"] and meta["guilt"]["stages"] == ["parse", "FoldSigmoid"]
    assert (
        "FoldSigmoid" in filed
        and "reduced with the graph to the fewest that still fail: `FoldSigmoid`."
        in (tmp_path / filed / "report.md").read_text()
    )


def test_candidates_that_differ_only_in_their_pinned_passes_are_checked_apart(
    passes_session: OracleSession,
) -> None:
    case = cases_with_sigmoid(1)[0]
    outcomes, verdict = judge_case(passes_session, case, case_uncomparable(case))
    check = Checker(passes_session, Failure.of(verdict.findings[0], case.graph), time.monotonic() + 60)
    with_pass = pinned(case, outcomes["wrong-under-fold-sigmoid"])
    without = TestCase(case.graph, case.values, with_pass.meta | {PASSES: ["Cleanup"]})
    assert check(with_pass) and not check(without) and check.checks == 2
