"""The metamorphic oracle: it catches a compiler that gets only the equivalent graph wrong, which plain
comparison cannot, raises no false alarm on a correct compiler, and its reduction keeps the comparison."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import case_uncomparable, sample_values
from fuzzer.judge import judge_case
from fuzzer.judge.compare import ORIGINAL
from fuzzer.report.bug import EQUIVALENT, record_filing
from fuzzer.triage.filing import BugFolders, file_findings
from oracles.backends.metamorphic import REWRITE, chosen_rewrite, equivalent_case
from oracles.session import OracleSession
from specs.equivalences import EQUIVALENCES, rewritten
from tests.fuzzer.conftest import FAULTY

PLANTED, META, CORRECT = "wrong-times-one", "meta-wrong-times-one", "meta-ort-noopt"
FALSE_ALARM_SEEDS = 60


@pytest.fixture(scope="module")
def session() -> Iterator[OracleSession]:
    names = ["WrongTimesOne", "MetaWrongTimesOne", "MetaOrtNoOpt"]
    with OracleSession(["eager", "ort-noopt", *(f"{FAULTY}:{name}" for name in names)], timeout=60) as session:
        yield session


def case_of(seed: int, rewrite: str | None = None) -> TestCase:
    """A generated case; with `rewrite`, that equivalence pinned at its last site."""
    graph = generate(seed, GenOptions(max_nodes=6))
    case = TestCase(graph, sample_values(graph, seed).values, {"id": f"{seed:06d}", "seed": seed})
    sites = EQUIVALENCES[rewrite].sites(graph) if rewrite else []
    if sites:
        case.meta[REWRITE] = {"equivalence": rewrite, "site": sites[-1]}
    return case


def mul_one_cases(count: int) -> list[TestCase]:
    """Finite cases whose float output takes the mul-one rewrite: the planted bug shows there."""
    found = []
    for seed in range(100):
        case = case_of(seed, "mul-one")
        rewrite = chosen_rewrite(case)
        float_site = rewrite and case.graph.types[rewrite.site].dtype.startswith("float")
        if rewrite and float_site and len(case.graph.nodes) >= 3 and case_uncomparable(case) is None:
            found.append(case)
        if len(found) == count:
            return found
    raise AssertionError("no generated case takes mul-one at a float tensor")


def test_a_compiler_wrong_only_on_the_equivalent_graph_is_caught_by_the_metamorphic_oracle_alone(
    session: OracleSession,
) -> None:
    for case in mul_one_cases(3):
        outcomes, verdict = judge_case(session, case, None, [PLANTED, META, "eager", "ort-noopt"])
        assert not [f for f in verdict.findings if f.backend == PLANTED], "plain comparison sees no x * 1"
        (finding,) = [f for f in verdict.findings if f.backend == META]
        if finding.symptom == "mismatch":
            assert finding.against == ORIGINAL and finding.attribution is not None
            assert finding.attribution["excess"] > 1 and finding.attribution["excess_on_original"] <= 1
        assert outcomes[META].drawn == {REWRITE: case.meta[REWRITE]}


def test_a_correct_compiler_raises_no_false_alarm_over_many_drawn_rewrites(session: OracleSession) -> None:
    judged = set()
    for seed in range(FALSE_ALARM_SEEDS):
        case = case_of(seed)
        outcomes, verdict = judge_case(session, case, case_uncomparable(case), [CORRECT, "eager", "ort-noopt"])
        assert not verdict.findings, (seed, chosen_rewrite(case), [f.to_json() for f in verdict.findings])
        if outcomes[CORRECT].status == "ok":
            judged.add(outcomes[CORRECT].drawn[REWRITE]["equivalence"])
    assert len(judged) >= 6, judged


def test_a_reduced_finding_keeps_its_rewrite_and_its_report_shows_both_graphs(
    tmp_path: Path, session: OracleSession
) -> None:
    case = mul_one_cases(1)[0]
    outcomes, verdict = judge_case(session, case, None, [META, "eager", "ort-noopt"])
    (signature,) = file_findings(BugFolders(tmp_path, record_filing), case, outcomes, verdict, session, 60)
    assert signature.startswith(f"{META}-")
    folder = tmp_path / signature
    meta = json.loads((folder / "meta.json").read_text())
    reduced = TestCase.load(folder)
    assert reduced.meta[REWRITE] == case.meta[REWRITE] and meta["rewrite"]["equivalence"] == "mul-one"
    assert meta["nodes"] < len(case.graph.nodes)
    assert rewritten(reduced.graph, reduced.values, chosen_rewrite(reduced)) is not None
    equivalent = equivalent_case(reduced)
    assert equivalent is not None and TestCase.load(folder / EQUIVALENT).graph.dumps() == equivalent.graph.dumps()
    report = (folder / "report.md").read_text()
    assert "### Equivalent graph" in report and "`mul-one`" in report
    assert f"{META}'s own result on the original graph" in report
