"""Fault injection: a campaign killed with SIGKILL at random points, or whose disk fills, resumes
and loses and repeats nothing."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from fuzzer.campaign.loop import case_seed, run_campaign
from fuzzer.campaign.state import CampaignError, CampaignOptions
from fuzzer.generate.generator import GenOptions
from oracles.session import OracleSession
from tests.processes import descendants, survivors

ROOT = Path(__file__).resolve().parents[3]
FAULTY = "tests.oracles.faulty_backends"
SEED, CASES, KILLS = 3, 120, 10
CAMPAIGN = (
    *("--seed", str(SEED), "--max-tests", str(CASES), "--max-nodes", "5", "--ops", "Sigmoid,Add,Relu,Mul,Neg"),
    *("--backends", f"eager,ort-noopt,{FAULTY}:CrashOnSigmoid,{FAULTY}:WrongOnSigmoid"),
    *("--reduce-budget", "2", "--include-unsupported"),
)


def launch(out: Path, *args: str) -> subprocess.Popen:
    """`dlfuzz fuzz` in its own process group, so one kill takes its workers with it."""
    command = [sys.executable, "-m", "fuzzer.cli", "fuzz", *args, "--out", str(out)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def recorded(out: Path) -> int:
    stats = out / "stats.jsonl"
    return stats.read_text().count("\n") if stats.exists() else 0


def kill_while_running(process: subprocess.Popen, out: Path, delay: float) -> bool:
    """Once the campaign has started (a resumed one: recorded a case), wait `delay` and kill -9 it with
    its workers; False if it ended first."""
    wanted, deadline = recorded(out) + (out / "campaign.json").exists(), time.monotonic() + 180
    while not (out / "campaign.json").exists() or recorded(out) < wanted:
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the campaign records no case"
        time.sleep(0.02)
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return True


@pytest.mark.slow
def test_a_campaign_killed_at_random_points_resumes_with_every_case_and_finding_once(tmp_path: Path) -> None:
    out = tmp_path / "c"
    rng = random.Random(0)
    kills = 0
    process = launch(out, *CAMPAIGN)
    while kills < KILLS and kill_while_running(process, out, rng.uniform(0, 0.5)):
        kills += 1
        # agreeing options may be repeated; everything else comes from campaign.json
        process = launch(out, "--resume", *(("--seed", str(SEED)) if kills % 2 else ()))
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors.decode()
    assert kills == KILLS, "the campaign ended before every kill"

    lines = [json.loads(text) for text in (out / "stats.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == [f"{i:06d}" for i in range(CASES)]
    assert [line["seed"] for line in lines] == [case_seed(SEED, i) for i in range(CASES)]
    filed = Counter((sig, line["id"]) for line in lines for sig in line.get("bugs", []))
    sighted: Counter = Counter()
    for folder in (out / "bugs").iterdir():
        if folder.is_dir():
            assert (folder / "meta.json").exists() and (folder / "report.md").exists()
            for text in (folder / "occurrences.jsonl").read_text().splitlines():
                sighted[(folder.name, json.loads(text)["case"])] += 1
    assert sighted == filed
    assert {"-".join(sig.split("-")[:2]) for sig, _ in filed} == {"crash-sigmoid", "wrong-sigmoid"}
    aliases = (
        json.loads((out / "bugs" / "aliases.json").read_text()) if (out / "bugs" / "aliases.json").exists() else {}
    )
    assert all((out / "bugs" / target).is_dir() for target in aliases.values())
    assert not list(out.rglob("*.tmp"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] == CASES and summary["bugs"] == len({sig for sig, _ in filed})
    assert len(json.loads((out / "campaign.json").read_text())["resumes"]) == kills


def planted_campaign(out: Path) -> CampaignOptions:
    """A short campaign on the planted session's backends, unreduced, so its findings are deterministic."""
    gen = GenOptions(max_nodes=5, ops=("Sigmoid", "Add", "Relu", "Mul", "Neg"))
    backends = ("eager", "ort-noopt", f"{FAULTY}:CrashOnSigmoid", f"{FAULTY}:WrongOnSigmoid")
    return CampaignOptions(out, SEED, 6, backends=backends, gen=gen, support_matrix=False, reduce_budget=0)


def findings(out: Path) -> tuple[list, dict]:
    """What a campaign found, case by case and bug folder by bug folder, without its timings."""
    lines = [json.loads(text) for text in (out / "stats.jsonl").read_text().splitlines()]
    cases = [(line["id"], line["verdict"], line.get("bugs")) for line in lines]
    folders = {
        folder.name: [json.loads(text)["case"] for text in (folder / "occurrences.jsonl").read_text().splitlines()]
        for folder in (out / "bugs").iterdir()
        if folder.is_dir()
    }
    return cases, folders


def test_a_campaign_whose_disk_fills_stops_in_one_line_and_resumes_to_the_same_findings(
    tmp_path: Path, planted_session: OracleSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync, writes = os.fsync, []

    def fsync(descriptor: int) -> None:  # every write of dlfuzz's ends in one; from the `full`th on, the disk is full
        writes.append(descriptor)
        if len(writes) >= full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    full = sys.maxsize
    run_campaign(planted_campaign(tmp_path / "whole"), session=planted_session)
    expected, total = findings(tmp_path / "whole"), len(writes)
    assert expected[1], "the planted backends found nothing"
    for full in (*range(3, total, total // 6), total - 1):  # from after campaign.json to the last stats line
        out = tmp_path / f"full-at-{full}"
        writes.clear()
        with pytest.raises(
            CampaignError, match=rf"^disk full: .*; free space and run `dlfuzz fuzz --resume --out {out}`$"
        ):
            run_campaign(planted_campaign(out), session=planted_session)
        assert not list(out.rglob("*.tmp"))
        stats = (out / "stats.jsonl").read_text()
        assert stats.endswith("\n") or not stats  # a line is written whole or not at all
        writes.clear()
        with monkeypatch.context() as room:
            room.setattr(os, "fsync", real_fsync)
            run_campaign(planted_campaign(out), resume=True, session=planted_session)
        assert findings(out) == expected, f"disk full at write {full} of {total}"


@pytest.mark.slow  # a lane and three backend workers start: 70 s on this busy 2-core machine
def test_a_campaign_killed_with_sigkill_leaves_no_lane_or_worker_behind(tmp_path: Path) -> None:
    out = tmp_path / "c"
    backends = f"eager,ort-noopt,{FAULTY}:Hang"  # the lane waits on a worker that hangs in compile
    options = ("--max-tests", "3", "--backends", backends, "--timeout", "300", "--include-unsupported")
    process = launch(out, *options, "--known", "off")
    try:
        deadline = time.monotonic() + 180
        while not (out / "campaign.json").exists():
            assert process.poll() is None and time.monotonic() < deadline, "the campaign did not start"
            time.sleep(0.05)
        time.sleep(2)  # the first case reaches the backends
        tree = descendants(process.pid)
        assert len(tree) >= 4, tree  # a lane and its three backend workers (and multiprocessing's resource tracker)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert not survivors(tree, 5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
