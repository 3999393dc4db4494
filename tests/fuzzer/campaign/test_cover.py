from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer.campaign.cover import campaign_candidates, cover, graph_pairs, greedy_cover
from fuzzer.campaign.loop import run_campaign
from fuzzer.campaign.replay import PASS, REGRESSION, corpus_cases, load_expectations, replay_case
from fuzzer.campaign.state import CampaignOptions
from fuzzer.generate.generator import GenOptions
from oracles.session import OracleSession

BACKENDS = ("eager", "ort-noopt", "tests.oracles.faulty_backends:BreaksOnFlag")


def test_greedy_cover_takes_the_largest_gain_first_the_cheaper_on_a_tie_and_drops_refused_cases() -> None:
    candidates = {
        "refused": {"a", "b", "c", "e"},
        "big": {"a", "b", "c"},
        "dear": {"d"},
        "cheap": {"d"},
        "redundant": {"a"},
    }
    cost = {"refused": 1, "big": 9, "dear": 5, "cheap": 1, "redundant": 1}
    tried: list[str] = []

    def accept(name: str) -> bool:
        tried.append(name)
        return name != "refused"

    pairs = {name: {(op, "float32") for op in ops} for name, ops in candidates.items()}
    universe = {(op, "float32") for op in "abcdex"}
    assert greedy_cover(pairs, universe, accept, cost) == ["big", "cheap"]
    assert tried == ["refused", "big", "cheap"]  # "e" and "x" stay uncovered; nothing else adds a pair


def test_greedy_cover_with_nothing_to_cover_keeps_nothing() -> None:
    assert greedy_cover({"a": {("Relu", "float32")}}, set(), lambda name: True, {"a": 1}) == []


@pytest.fixture
def flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file whose existence breaks the stub backend (its workers read the variable when started)."""
    path = tmp_path / "broken"
    monkeypatch.setenv("DLFUZZ_TEST_BREAK", str(path))
    return path


def test_coverage_cases_are_kept_consistent_and_replay_as_passing_until_a_backend_regresses(
    tmp_path: Path, flag: Path
) -> None:
    campaign = tmp_path / "campaign"
    gen = GenOptions(max_nodes=4, ops=("Relu", "Add", "Mul", "Neg", "Abs"), dtypes=("float32", "int32"))
    options = CampaignOptions(
        out=campaign, seed=3, max_tests=4, backends=BACKENDS, gen=gen, support_matrix=False, reduce_budget=0
    )
    with OracleSession(list(BACKENDS), timeout=30) as session:
        run_campaign(options, session=session)
        candidates = campaign_candidates(campaign)
        assert candidates
        assert cover([campaign], tmp_path / "none", session, None, budget=0.0).over_budget == len(
            {c.name for c in candidates}
        )
        report = cover([campaign], tmp_path / "corpus", session, None)
        assert report.kept and not report.refused
        assert report.covered == set().union(*(graph_pairs(c.graph) for c in candidates))
        kept = corpus_cases(tmp_path / "corpus")
        assert [folder.name for folder in kept] == sorted(report.kept)
        assert all(e == {"status": "ok"} for f in kept for e in load_expectations(f)["backends"].values())
        assert {r.result for folder in kept for r in replay_case(folder, session)} == {PASS}
        assert cover([campaign], tmp_path / "corpus", session, None).kept == []  # the corpus covers it already

        flag.touch()
        results = {(r.backend, r.result) for folder in kept for r in replay_case(folder, session)}
        assert results == {("eager", PASS), ("ort-noopt", PASS), ("breaks-on-flag", REGRESSION)}
        refusing = cover([campaign], tmp_path / "other", session, None)
        assert refusing.kept == [] and set(refusing.refused) == {c.name for c in candidates}
