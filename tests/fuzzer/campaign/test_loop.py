from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from fuzzer.campaign.loop import run_campaign
from fuzzer.campaign.pipeline import CasePipeline, Judged, Prepared, Stage, mark
from fuzzer.campaign.state import CampaignError, CampaignOptions
from fuzzer.core.ir import Graph
from fuzzer.generate.generator import GenOptions
from fuzzer.inputs.search import SearchOptions
from oracles.session import OracleSession
from tests.conftest import ALL_BACKENDS
from tests.fuzzer.handmade import build, float32

FAULTY = "tests.oracles.faulty_backends"
SUMMARY_KEYS = {
    "cases",
    "valid",
    "invalid",
    "finite",
    "backends",
    "bugs",
    "seconds",
    "cases_per_minute",
    "stage_seconds",
}


def read_stats(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]


def test_campaign_on_real_compilers_writes_every_record(tmp_path: Path, real_session: OracleSession) -> None:
    options = CampaignOptions(
        out=tmp_path / "c", seed=1, max_tests=4, backends=ALL_BACKENDS, gen=GenOptions(), support_matrix=False
    )
    summary = run_campaign(options, session=real_session)
    assert set(summary) >= SUMMARY_KEYS and summary["cases"] == 4
    lines = read_stats(tmp_path / "c")
    assert [line["id"] for line in lines] == ["000000", "000001", "000002", "000003"]
    for line in lines:
        assert {"id", "seed", "nodes", "ops", "verdict", "stage_seconds"} <= set(line)
        if line["verdict"] != "invalid":
            assert set(line["backends"]) == set(ALL_BACKENDS)
            assert {"generate", "search", "tvm", "ort", "inductor"} <= set(line["stage_seconds"])
    campaign = json.loads((tmp_path / "c" / "campaign.json").read_text())
    assert campaign["seed"] == 1 and set(campaign["backends"]) == set(ALL_BACKENDS)
    assert all(info["version"] for info in campaign["backends"].values())


def test_campaign_survives_segfaulting_and_hanging_backends(tmp_path: Path) -> None:
    backends = ("eager", "ort-noopt", f"{FAULTY}:Segfault", f"{FAULTY}:Hang")
    options = CampaignOptions(
        out=tmp_path / "c", seed=3, max_tests=2, backends=backends, timeout=3, support_matrix=False, reduce_budget=1
    )
    summary = run_campaign(options)
    assert summary["cases"] == 2
    valid = summary["valid"]
    assert summary["backends"]["segfault"]["died"] == valid
    assert summary["backends"]["hang"]["timeout"] == valid
    assert summary["worker_restarts"]["segfault"] >= valid - 1
    bugs = sorted(p.name for p in (tmp_path / "c" / "bugs").iterdir())
    assert any(b.startswith("segfault-died-compile-SIGSEGV") for b in bugs)
    assert any(b.startswith("hang-timeout-compile") for b in bugs)
    for bug in bugs:
        folder = tmp_path / "c" / "bugs" / bug
        assert {"report.md", "repro.py", "case.json", "values.npz", "model.onnx", "meta.json"} <= {
            p.name for p in folder.iterdir()
        }
        assert len((folder / "occurrences.jsonl").read_text().splitlines()) == valid


def test_campaign_refuses_to_overwrite_and_resumes_where_it_stopped(tmp_path: Path) -> None:
    backends = ("eager", "ort-noopt")
    first = CampaignOptions(out=tmp_path / "c", seed=5, max_tests=2, backends=backends, support_matrix=False)
    run_campaign(first)
    with pytest.raises(CampaignError, match="already holds a campaign"):
        run_campaign(first)
    more = CampaignOptions(out=tmp_path / "c", seed=5, max_tests=3, backends=backends, support_matrix=False)
    with open(tmp_path / "c" / "stats.jsonl", "a") as stats:
        stats.write('{"id": "000002", "cut off by a ki')
    summary = run_campaign(more, resume=True)
    assert summary["cases"] == 3
    assert [line["id"] for line in read_stats(tmp_path / "c")] == ["000000", "000001", "000002"]
    with pytest.raises(CampaignError, match=r"was run with other options: seed 5 \(asked 6\)"):
        run_campaign(
            CampaignOptions(out=tmp_path / "c", seed=6, max_tests=4, backends=backends, support_matrix=False),
            resume=True,
        )


def test_campaign_reduces_each_new_bug_before_writing_its_folder(tmp_path: Path) -> None:
    backends = ("eager", "ort-noopt", f"{FAULTY}:CrashOnSigmoid")
    gen = GenOptions(max_nodes=6, ops=("Sigmoid", "Add", "Relu"), patterns="none")  # Sigmoid in every few cases
    options = CampaignOptions(
        out=tmp_path / "c", seed=2, max_tests=3, backends=backends, gen=gen, reduce_budget=60, support_matrix=False
    )
    summary = run_campaign(options)
    assert summary["bugs"] == 1
    (folder,) = (tmp_path / "c" / "bugs").iterdir()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["nodes"] == 1 and meta["ops"] == ["Sigmoid"]
    crashed = [line for line in read_stats(tmp_path / "c") if line["verdict"] == "crash"]
    assert len((folder / "occurrences.jsonl").read_text().splitlines()) == len(crashed) >= 1
    assert all("triage" in line["stage_seconds"] for line in crashed)
    # The reduction's runs of the crashing backend are its seconds, not triage's own.
    reduced = crashed[0]  # the first sighting is the one reduced
    (faulty,) = set(reduced["backends"]) - {"eager", "ort-noopt"}
    assert reduced["stage_seconds"][faulty] > reduced["backends"][faulty]["seconds"]


def test_a_case_the_search_cannot_make_finite_is_recorded_and_never_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    always_nan = build({"x": float32(4)}, [("Exp", ["x"], {}), ("Neg", ["t0"], {}), ("Log", ["t1"], {})])
    monkeypatch.setattr("fuzzer.campaign.loop.generate", lambda *args: always_nan)
    options = CampaignOptions(
        out=tmp_path / "c", seed=2, max_tests=1, backends=("eager", "ort-noopt"), support_matrix=False
    )
    summary = run_campaign(replace(options, search=SearchOptions(time_budget=0.05)))
    (line,) = read_stats(tmp_path / "c")
    assert line["verdict"] == "nonfinite" and set(line["backends"]) == {"eager", "ort-noopt"}
    assert line["search"]["method"] == "search" and line["search"]["finite"] is False
    assert {"steps", "seconds", "first_bad_node", "constant_outputs", "negative_share"} <= set(line["search"])
    assert summary["finite"] == 0 and summary["bugs"] == 0


def test_a_case_whose_values_stay_out_of_domain_is_judged_on_crashes_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sub(x, x) makes every group MeanVarianceNormalization reads constant whatever x: finite, never in domain.
    mvn = {"axes": [0], "onnx_axes": [0]}
    steps = [("Sub", ["x", "x"], {}), ("MeanVarianceNormalization", ["t0"], mvn), ("Sigmoid", ["t1"], {})]
    constant_group = build({"x": float32(4)}, steps)
    monkeypatch.setattr("fuzzer.campaign.loop.generate", lambda *args: constant_group)
    backends = ("eager", "ort-noopt", f"{FAULTY}:CrashOnSigmoid", f"{FAULTY}:WrongOnSigmoid")
    options = CampaignOptions(
        out=tmp_path / "c", seed=2, max_tests=1, backends=backends, support_matrix=False, reduce_budget=5
    )
    summary = run_campaign(replace(options, search=SearchOptions(time_budget=0.05)))
    (line,) = read_stats(tmp_path / "c")
    assert line["search"]["finite"] is True and line["search"]["in_domain"] is False
    assert line["verdict"] == "crash" and "out of domain" in line["reason"]
    assert line["backends"]["crash-sigmoid"]["status"] == "crash"
    assert line["backends"]["wrong-sigmoid"]["status"] == "ok"
    (bug,) = (tmp_path / "c" / "bugs").iterdir()
    assert summary["bugs"] == 1 and bug.name.startswith("crash-sigmoid")


def test_an_exception_in_our_own_stages_is_an_invalid_case_not_the_end_of_the_campaign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("input image (T: 2) smaller than kernel size (kT: 3)")

    monkeypatch.setattr("fuzzer.campaign.loop.generate", broken)
    options = CampaignOptions(out=tmp_path / "c", seed=1, max_tests=2, backends=("eager",), support_matrix=False)
    summary = run_campaign(options)
    assert summary["cases"] == 2 and summary["invalid"] == 2
    assert read_stats(tmp_path / "c")[0]["problems"] == [
        "RuntimeError: input image (T: 2) smaller than kernel size (kT: 3)"
    ]


def test_references_that_disagree_make_an_invalid_case_filed_nowhere(tmp_path: Path) -> None:
    """The disagreement is a finding of the verdict (it names the outputs), but no compiler's bug."""
    backends = ("eager", f"{FAULTY}:SkewedReference")
    gen = GenOptions(max_nodes=3, ops=("Relu", "Add", "Mul"), dtypes=("float32",))
    options = CampaignOptions(out=tmp_path / "c", seed=1, max_tests=2, backends=backends, gen=gen, support_matrix=False)
    summary = run_campaign(options)
    assert summary["cases"] == 2 and summary["invalid"] == 2 and summary["bugs"] == 0
    assert summary["worker_restarts"].get("pipeline", 0) == 0, "filing an invalid case killed its lane"
    assert all("disagree" in line["reason"] for line in read_stats(tmp_path / "c"))
    assert not (tmp_path / "c" / "bugs").exists() or not any((tmp_path / "c" / "bugs").iterdir())


class DiesOnSecondCase(CasePipeline):
    """A pipeline whose torch traps on integer arithmetic in the search of case 000001, as torch's
    INT_MIN / -1 does."""

    def prepare(self, stage: Stage, line: dict, graph: Graph, weights: dict | None = None) -> Prepared | Judged:
        if line["id"] == "000001":
            mark(stage, "search")
            os.kill(os.getpid(), signal.SIGFPE)
        return super().prepare(stage, line, graph, weights)


class DiesOnThirdCase(CasePipeline):
    def prepare(self, stage: Stage, line: dict, graph: Graph, weights: dict | None = None) -> Prepared | Judged:
        if line["id"] == "000002":
            os.kill(os.getpid(), signal.SIGFPE)
        return super().prepare(stage, line, graph, weights)


def test_backend_worker_restarts_outlive_the_lane_that_counted_them(tmp_path: Path) -> None:
    # Regression: each lane's count replaced the last, so a lane that restarted reported its new life's
    # restarts alone: a segfaulting backend restarted in the first life read 0.
    backends = ("eager", "ort-noopt", f"{FAULTY}:Segfault")
    options = CampaignOptions(
        out=tmp_path / "c", seed=3, max_tests=4, backends=backends, support_matrix=False, reduce_budget=0
    )
    summary = run_campaign(options, pipeline=DiesOnThirdCase)
    verdicts = [line["verdict"] for line in read_stats(tmp_path / "c")]
    assert verdicts[2] == "skipped" and all(v == "crash" for v in verdicts[:2] + verdicts[3:])
    assert summary["worker_restarts"]["pipeline"] == 1
    assert summary["worker_restarts"]["segfault"] == 1, "the first life restarted it once; the second started it"


@pytest.mark.parametrize(
    ("backends", "lane_deaths"),
    [(("eager", "ort-noopt"), 1), (("eager", "ort-noopt", f"{FAULTY}:BatchedCrashOnSigmoid"), 2)],
    ids=["alone", "in-a-batch"],
)
def test_a_crash_in_our_own_graph_executing_stages_skips_one_case_and_keeps_it(
    tmp_path: Path, backends: tuple[str, ...], lane_deaths: int
) -> None:
    """In a batch, the lane's death sends the batch's cases back to be judged one at a time: only the
    case that kills it is skipped."""
    options = CampaignOptions(out=tmp_path / "c", seed=4, max_tests=3, backends=backends, support_matrix=False)
    summary = run_campaign(options, pipeline=DiesOnSecondCase)
    lines = read_stats(tmp_path / "c")
    assert [line["id"] for line in lines] == ["000000", "000001", "000002"]
    skipped = lines[1]
    assert skipped["verdict"] == "skipped" and skipped["backends"] == {}
    assert skipped["failure"]["status"] == "died" and skipped["failure"]["exit"] == "SIGFPE"
    assert skipped["failure"]["stage"] == "search"
    assert (tmp_path / "c" / "skipped" / "000001" / "case.json").is_file()
    assert lines[0]["verdict"] != "skipped"
    assert lines[2]["verdict"] != "skipped" and len(lines[2]["backends"]) == len(backends)
    assert summary["skipped"] == 1 and summary["cases"] == 3
    assert summary["worker_restarts"]["pipeline"] == lane_deaths


def test_a_batched_campaign_judges_and_files_as_one_case_at_a_time_does(tmp_path: Path) -> None:
    backends = ("eager", "ort-noopt", f"{FAULTY}:BatchedWrongOnSigmoid", f"{FAULTY}:WrongWhenBatched")
    gen = GenOptions(max_nodes=6, ops=("Sigmoid", "Add", "Relu", "Mul"))
    runs = {}
    with OracleSession(list(backends), timeout=60) as session:
        for batch in (1, None):
            options = CampaignOptions(
                out=tmp_path / str(batch),
                seed=2,
                max_tests=9,
                backends=backends,
                gen=gen,
                support_matrix=False,
                reduce_budget=5,
                feedback=False,
                batch=batch,
            )
            run_campaign(options, session=session)
            runs[batch] = read_stats(options.out)
    alone, batched = runs[1], runs[None]
    assert [(line["id"], line["verdict"], line["bugs"]) for line in alone] == [
        (line["id"], line["verdict"], line["bugs"]) for line in batched
    ]
    assert any(line["bugs"] for line in batched), "the planted Sigmoid bug was not drawn"
    shares = [line["backends"]["batched-wrong-sigmoid"].get("batch", 1) for line in batched if line["backends"]]
    assert max(shares) == 4 and all(line["backends"]["wrong-when-batched"]["status"] == "ok" for line in batched)
    assert sorted(p.name for p in (tmp_path / "1" / "bugs").iterdir()) == sorted(
        p.name for p in (tmp_path / "None" / "bugs").iterdir()
    )


def test_a_graphs_later_value_set_wrong_in_the_same_place_is_a_sighting_not_a_second_reduction(
    tmp_path: Path,
) -> None:
    # Regression: every value set of a failing graph was reduced again to recompute its signature, 11%
    # of a value-set campaign's time went to triage.
    backends = ("eager", "ort-noopt", f"{FAULTY}:WrongOnSigmoid")
    gen = GenOptions(max_nodes=6, ops=("Sigmoid", "Add", "Relu"))
    options = CampaignOptions(
        out=tmp_path / "c", seed=2, max_tests=6, backends=backends, gen=gen, reduce_budget=30, value_sets=3
    )
    run_campaign(replace(options, support_matrix=False))
    lines = read_stats(options.out)
    wrong = [line for line in lines if line["bugs"]]
    later = [line for line in wrong if "graph_of" in line and any(w["id"] == line["graph_of"] for w in wrong)]
    assert later, "no graph failed on two of its value sets"
    (folder,) = (options.out / "bugs").iterdir()
    sightings = {json.loads(s)["case"]: json.loads(s) for s in (folder / "occurrences.jsonl").read_text().splitlines()}
    assert sorted(sightings) == sorted(line["id"] for line in wrong)
    assert all("reduced_nodes" not in sightings[line["id"]] for line in later)
    assert all("reduced_nodes" in sightings[line["id"]] for line in wrong if line not in later)


@pytest.mark.slow
def test_lanes_file_the_same_cases_as_one_lane(tmp_path: Path) -> None:
    gen = GenOptions(max_nodes=6, ops=("Sigmoid", "Add", "Relu", "Mul"))
    backends = ("eager", "ort-noopt", f"{FAULTY}:CrashOnSigmoid")
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}"
        options = CampaignOptions(
            out=out,
            seed=6,
            max_tests=8,
            backends=backends,
            gen=gen,
            support_matrix=False,
            feedback=False,
            reduce_budget=10,
            jobs=jobs,
        )
        summary = run_campaign(options)
        assert summary["cases"] == 8
        stable = ("id", "seed", "ops", "verdict", "bugs")
        runs[jobs] = (
            [{k: line.get(k) for k in stable} for line in read_stats(out)],
            sorted(p.name for p in (out / "bugs").iterdir()),
        )
    assert runs[1] == runs[2]
    assert runs[1][1], "the planted bug was filed"
