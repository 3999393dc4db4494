from __future__ import annotations

import json
from pathlib import Path

from fuzzer.campaign.known import KNOWN_WEIGHT, KnownBugs
from fuzzer.campaign.loop import run_campaign
from fuzzer.campaign.replay import PASS, STILL_BROKEN, keep, replay_case
from fuzzer.campaign.state import CampaignOptions
from fuzzer.generate.generator import GenOptions
from oracles.session import OracleSession

BACKENDS = ("eager", "ort-noopt", "tests.oracles.faulty_backends:CrashOnSigmoid")
GEN = GenOptions(max_nodes=6, ops=("Sigmoid", "Add", "Relu"), patterns="none")  # Sigmoid in every few cases


def campaign(out: Path, seed: int, known: Path | None = None, cases: int = 3) -> dict:
    options = CampaignOptions(
        out=out,
        seed=seed,
        max_tests=cases,
        backends=BACKENDS,
        gen=GEN,
        support_matrix=False,
        known=known and str(known),
    )
    return run_campaign(options)


def test_a_kept_bug_is_counted_as_known_and_not_filed_again(tmp_path: Path) -> None:
    first = campaign(tmp_path / "first", 2)
    (sig,) = first["bug_signatures"]
    with OracleSession(list(BACKENDS), timeout=60) as session:  # the kept case replays as the bug it is
        keep(tmp_path / "first" / "bugs" / sig, tmp_path / "corpus", session, "sigmoid-crash")
        results = {r.backend: r.result for r in replay_case(tmp_path / "corpus" / "sigmoid-crash", session)}
    known = KnownBugs.load(tmp_path / "corpus")
    assert known.folders[sig] == "sigmoid-crash" and [op for op, _ in known.triggers] == ["Sigmoid"]
    assert results == {"eager": PASS, "ort-noopt": PASS, "crash-sigmoid": STILL_BROKEN}

    summary = campaign(tmp_path / "second", 2, tmp_path / "corpus")
    lines = [json.loads(line) for line in (tmp_path / "second" / "stats.jsonl").read_text().splitlines()]
    crashed = [line for line in lines if line["verdict"] == "crash"]
    assert crashed and all(line["known"] == [sig] and line["bugs"] == [] for line in crashed)
    assert (summary["bugs"], summary["known_bugs"], summary["known_cases"]) == (0, 1, len(crashed))
    assert summary["known"] == {sig: "sigmoid-crash"}
    assert not (tmp_path / "second" / "bugs" / sig).exists()


def test_what_triggers_a_kept_bug_is_drawn_less() -> None:
    known = KnownBugs({"s": "kept"}, {("Sigmoid", ("float32",))})
    weight = known.weight(lambda op, dtypes: 0.5)
    assert weight("Sigmoid", ("float32",)) == 0.5 * KNOWN_WEIGHT
    assert weight("Sigmoid", ("float64",)) == 0.5 and weight("Relu", ("float32",)) == 0.5
    assert known.weight(None)("Sigmoid", ("float32",)) == KNOWN_WEIGHT


def test_a_bug_the_campaign_files_is_known_from_then_on_and_its_cost_is_counted_per_half(tmp_path: Path) -> None:
    summary = campaign(tmp_path / "c", 2, cases=8)
    lines = [json.loads(line) for line in (tmp_path / "c" / "stats.jsonl").read_text().splitlines()]
    crashed = [int(line["id"]) for line in lines if line["verdict"] == "crash"]
    (sig,) = summary["bug_signatures"]
    assert len(crashed) > 1  # the Sigmoid crash is found again, though drawn less once filed
    later = crashed[1:]  # every sighting after the first is spent on a known bug
    expected = {"cases": len(later), "first_half": sum(i < 4 for i in later), "second_half": sum(i >= 4 for i in later)}
    assert summary["known_cost"] == expected

    learned = KnownBugs()
    learned.learn(tmp_path / "c" / "bugs" / sig)
    assert [op for op, _ in learned.triggers] == ["Sigmoid"]
