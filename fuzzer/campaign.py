"""The campaign loop: generate, check, find values, run every backend, judge, triage, record."""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fuzzer.generate import GenerationError, GenOptions, generate
from fuzzer.materialize import to_onnx
from fuzzer.report import add_occurrence, write_bug
from fuzzer.search import SearchOptions, search_values
from fuzzer.testcase import TestCase, write_atomic
from fuzzer.triage import signature
from fuzzer.validate import check_onnx, check_torch
from fuzzer.values import evaluate, sample_values
from oracles.compare import Verdict
from oracles.session import OracleSession

STATUSES = ("ok", "mismatch", "crash", "timeout", "died", "unsupported")


@dataclass
class CampaignOptions:
    out: Path
    seed: int = 0
    max_tests: int | None = None
    time_budget: float | None = None
    backends: tuple[str, ...] = ("eager", "ort-noopt", "ort", "tvm", "inductor")
    gen: GenOptions = field(default_factory=GenOptions)
    search: SearchOptions | None = field(default_factory=SearchOptions)  # None: plain random sampling
    timeout: float = 60.0
    memory_mb: int | None = 8192


class CampaignError(Exception):
    """A campaign that cannot start (its output folder holds another campaign, say)."""


@dataclass
class Totals:
    """Running counts that become summary.json."""

    cases: int = 0
    valid: int = 0
    invalid: int = 0
    finite: int = 0
    verdicts: Counter = field(default_factory=Counter)
    backends: dict[str, Counter] = field(default_factory=dict)
    stage_seconds: Counter = field(default_factory=Counter)
    bugs: set[str] = field(default_factory=set)

    def add(self, line: dict[str, Any]) -> None:
        self.cases += 1
        self.valid += line["verdict"] != "invalid"
        self.invalid += line["verdict"] == "invalid"
        self.finite += bool(line.get("search", {}).get("finite"))
        self.verdicts[line["verdict"]] += 1
        for name, result in line.get("backends", {}).items():
            self.backends.setdefault(name, Counter())[result["status"]] += 1
        self.stage_seconds.update(line["stage_seconds"])
        self.bugs.update(line.get("bugs", []))

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "valid": self.valid,
            "invalid": self.invalid,
            "finite": self.finite,
            "verdicts": dict(self.verdicts),
            "backends": {n: {s: c.get(s, 0) for s in STATUSES} for n, c in self.backends.items()},
            "bugs": len(self.bugs),
            "bug_signatures": sorted(self.bugs),
            "seconds": round(seconds, 2),
            "cases_per_minute": round(60 * self.cases / seconds, 2) if seconds > 0 else 0.0,
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
        }


Progress = Callable[[int, Totals, float], None]


def case_seed(campaign_seed: int, index: int) -> int:
    """Independent, reproducible seed for case `index` of a campaign."""
    return int(np.random.SeedSequence([campaign_seed, index]).generate_state(1)[0])


def run_campaign(
    options: CampaignOptions,
    resume: bool = False,
    progress: Progress | None = None,
    session: OracleSession | None = None,
) -> dict[str, Any]:
    """Run until the case or time budget is spent; every finding is on disk before the next case.

    A caller may lend a started `session` (tests share warm workers); otherwise one is made.
    """
    out = options.out
    stats_path = out / "stats.jsonl"
    totals, start_index, previous_seconds = _prepare(options, resume)
    started = time.monotonic()
    owned = session is None
    if session is None:
        session = OracleSession(list(options.backends), options.timeout, options.memory_mb)
        session.start()
    try:
        _write_campaign(options, session)
        index = start_index
        with open(stats_path, "a") as stats:
            while _budget_left(options, index, time.monotonic() - started):
                line = run_one(options, session, index)
                stats.write(json.dumps(line, sort_keys=True) + "\n")
                stats.flush()
                os.fsync(stats.fileno())
                totals.add(line)
                elapsed = previous_seconds + time.monotonic() - started
                summary = totals.summary(elapsed)
                summary["worker_restarts"] = session.restarts
                write_atomic(out / "summary.json", json.dumps(summary, indent=1, sort_keys=True).encode())
                if progress:
                    progress(index + 1, totals, elapsed)
                index += 1
    finally:
        if owned:
            session.close()
    return json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}


def _budget_left(options: CampaignOptions, index: int, elapsed: float) -> bool:
    if options.max_tests is not None and index >= options.max_tests:
        return False
    return options.time_budget is None or elapsed < options.time_budget


def _prepare(options: CampaignOptions, resume: bool) -> tuple[Totals, int, float]:
    out = options.out
    if out.exists() and not out.is_dir():
        raise CampaignError(f"{out} exists and is not a folder")
    totals = Totals()
    stats_path = out / "stats.jsonl"
    if (out / "campaign.json").exists() and not resume:
        raise CampaignError(f"{out} already holds a campaign; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if not resume or not stats_path.exists():
        stats_path.write_text("")
        return totals, 0, 0.0
    previous = json.loads((out / "campaign.json").read_text())
    if previous.get("seed") != options.seed:
        raise CampaignError(f"{out} was run with seed {previous.get('seed')}, not {options.seed}")
    lines = [json.loads(line) for line in stats_path.read_text().splitlines() if line.strip()]
    for line in lines:
        totals.add(line)
    summary = out / "summary.json"
    seconds = json.loads(summary.read_text()).get("seconds", 0.0) if summary.exists() else 0.0
    return totals, len(lines), seconds


def _write_campaign(options: CampaignOptions, session: OracleSession) -> None:
    path = options.out / "campaign.json"
    document = {
        "seed": options.seed,
        "options": {
            "max_tests": options.max_tests,
            "time_budget": options.time_budget,
            "backends": list(options.backends),
            "timeout": options.timeout,
            "memory_mb": options.memory_mb,
            "gen": asdict(options.gen),
            "search": asdict(options.search) if options.search else None,
        },
        "backends": {name: asdict(info) for name, info in session.infos.items()},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "started": json.loads(path.read_text())["started"]
        if path.exists()
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_atomic(path, json.dumps(document, indent=1, sort_keys=True).encode())


def prepare_case(
    options: GenOptions, seed: int, search: SearchOptions | None = SearchOptions()
) -> tuple[TestCase, list[str], dict[str, float]]:
    """Generate, validate and find values for one case; returns it with any validity problems.

    Values come from the input search, or from random sampling when `search` is None.
    """
    seconds: dict[str, float] = {}
    clock = time.monotonic()
    graph = generate(seed, options)
    seconds["generate"] = time.monotonic() - clock
    clock = time.monotonic()
    result = search_values(graph, seed, search) if search else sample_values(graph, seed)
    seconds["search"] = time.monotonic() - clock
    case = TestCase(graph, result.values, {"seed": seed, "search": result.summary()})
    clock = time.monotonic()
    problems = check_onnx(graph, to_onnx(graph, case.weights))
    problems += check_torch(graph, evaluate(graph, case.values))
    seconds["validate"] = time.monotonic() - clock
    return case, problems, seconds


def run_one(options: CampaignOptions, session: OracleSession, index: int) -> dict[str, Any]:
    """One case through every stage; returns its stats line."""
    seed = case_seed(options.seed, index)
    case_id = f"{index:06d}"
    try:
        case, problems, seconds = prepare_case(options.gen, seed, options.search)
    except GenerationError as error:
        return {
            "id": case_id,
            "seed": seed,
            "nodes": 0,
            "ops": [],
            "verdict": "invalid",
            "problems": [str(error)],
            "stage_seconds": {},
            "backends": {},
        }
    case.meta["id"] = case_id
    line: dict[str, Any] = {
        "id": case_id,
        "seed": seed,
        "nodes": len(case.graph.nodes),
        "ops": case.graph.op_types(),
        "search": case.meta["search"],
        "stage_seconds": seconds,
    }
    if problems:
        case.save(options.out / "invalid" / case_id)
        return line | {"verdict": "invalid", "problems": problems, "backends": {}}
    if not case.meta["search"]["finite"]:
        # NaN or Inf hides real miscompilations and invents false ones: such a case is never judged.
        return line | {"verdict": "nonfinite", "backends": {}}
    outcomes, verdict = session.judge(case)
    for name, outcome in outcomes.items():
        seconds[name] = outcome.seconds
    line["backends"] = {
        name: outcome.summary() | {"status": verdict.statuses[name]} for name, outcome in outcomes.items()
    }
    line["verdict"] = verdict.kind
    if verdict.reason:
        line["reason"] = verdict.reason
    if verdict.kind == "invalid":
        case.save(options.out / "invalid" / case_id)
    line["bugs"] = _triage(options.out, case, outcomes, verdict, session)
    line["stage_seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    return line


def _triage(out: Path, case: TestCase, outcomes: dict, verdict: Verdict, session: OracleSession) -> list[str]:
    if verdict.kind == "invalid":
        return []
    signatures = []
    for finding in verdict.findings:
        sig = signature(finding, case.graph)
        folder = out / "bugs" / sig
        if not (folder / "meta.json").exists():
            write_bug(folder, sig, finding, case, outcomes, session.infos)
        add_occurrence(folder, {"case": case.meta["id"], "seed": case.meta["seed"], "finding": finding.to_json()})
        signatures.append(sig)
    return signatures
