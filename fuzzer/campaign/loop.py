"""The campaign loop: draw each case, hand it to a lane (values, checks, backends, triage), record
its line and fold it into the feedback, in case order."""

from __future__ import annotations

import json
import platform
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from fuzzer.campaign.feedback import Coverage, Feedback, Plan, node_kinds
from fuzzer.campaign.known import KnownBugs
from fuzzer.campaign.pipeline import (
    GRAPH_OF,
    BugIndex,
    CasePipeline,
    Judged,
    LocalLane,
    PipelineLane,
    batch_sizes,
    file_call,
    judge_call,
    problem_line,
)
from fuzzer.campaign.state import (
    BUGS,
    CAMPAIGN,
    INVALID,
    POOL,
    SKIPPED,
    STATS,
    CampaignError,
    CampaignOptions,
    Records,
    check_output,
    open_records,
)
from fuzzer.campaign.support import Progress as ProbeProgress
from fuzzer.campaign.support import cached_matrix, load_or_probe, unprobed
from fuzzer.core.files import append_line, disk_full, write_atomic
from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import DrawWeight, generate
from fuzzer.report.bug import META, record_filing
from fuzzer.report.campaign import SUMMARY
from fuzzer.triage.filing import BugFolders
from oracles.base import BackendInfo
from oracles.session import OracleSession
from oracles.worker import Reply
from specs.patterns import occurrences

if TYPE_CHECKING:
    from fuzzer.campaign.ray_lane import RayLane

STATUSES = ("ok", "mismatch", "crash", "timeout", "died", "unsupported")


@dataclass
class Totals:
    """Running counts that become summary.json."""

    cases: int = 0
    graphs: int = 0  # cases that drew a graph of their own (not another value set of one)
    valid: int = 0
    invalid: int = 0
    skipped: int = 0
    finite: int = 0
    verdicts: Counter = field(default_factory=Counter)
    backends: dict[str, Counter] = field(default_factory=dict)
    stage_seconds: Counter = field(default_factory=Counter)
    bugs: set[str] = field(default_factory=set)
    known_bugs: KnownBugs = field(default_factory=KnownBugs)
    known: set[str] = field(default_factory=set)  # kept bugs seen again
    known_cases: int = 0
    spent_on_known: list[bool] = field(default_factory=list)  # per case: every finding a bug known before it
    depth: int = 0  # summed over cases, for the mean
    with_pattern: int = 0  # cases holding any optimization pattern
    changed: Counter = field(default_factory=Counter)  # backend -> cases in which it fired any optimization
    coverage: Coverage = field(default_factory=Coverage)

    def add(self, line: dict[str, Any]) -> None:
        self.cases += 1
        self.graphs += GRAPH_OF not in line
        self.valid += line["verdict"] not in ("invalid", "skipped")
        self.invalid += line["verdict"] == "invalid"
        self.skipped += line["verdict"] == "skipped"
        self.finite += bool(line.get("search", {}).get("finite"))
        self.verdicts[line["verdict"]] += 1
        for name, result in line.get("backends", {}).items():
            self.backends.setdefault(name, Counter())[result["status"]] += 1
            self.changed[name] += any(count > 0 for count in result.get("optimizations", {}).values())
        self.stage_seconds.update(line["stage_seconds"])
        found = set(line.get("bugs", []))
        self.spent_on_known.append(bool(found or line.get("known")) and found <= self.bugs)
        self.bugs.update(found)
        self.known.update(line.get("known", []))
        self.known_cases += bool(line.get("known"))
        self.depth += line.get("depth", 0)
        self.with_pattern += bool(line.get("patterns"))
        self.coverage.fold(line)

    def known_cost(self) -> dict[str, int]:
        """Cases spent on bugs known before they ran (kept in the corpus, or filed by an earlier case), in
        all and per half of the campaign: what triggers a known bug is drawn less from when it is known."""
        half = len(self.spent_on_known) // 2
        first, second = self.spent_on_known[:half], self.spent_on_known[half:]
        return {"cases": sum(self.spent_on_known), "first_half": sum(first), "second_half": sum(second)}

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "graphs": self.graphs,
            "valid": self.valid,
            "invalid": self.invalid,
            "skipped": self.skipped,
            "finite": self.finite,
            "verdicts": dict(self.verdicts),
            "backends": {n: {s: c.get(s, 0) for s in STATUSES} for n, c in self.backends.items()},
            "bugs": len(self.bugs),
            "bug_signatures": sorted(self.bugs),
            "known_bugs": len(self.known),
            "known_cases": self.known_cases,
            "known": {sig: self.known_bugs.folders.get(sig, "") for sig in sorted(self.known)},
            "known_cost": self.known_cost(),
            "seconds": round(seconds, 2),
            "cases_per_minute": round(60 * self.cases / seconds, 2) if seconds > 0 else 0.0,
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "coverage": {
                "optimizations": {name: len(keys) for name, keys in self.coverage.optimizations.items()},
                "fired": {name: sorted(keys) for name, keys in self.coverage.optimizations.items()},
                "compositions": {name: len(keys) for name, keys in self.coverage.compositions.items()},
                "changed_share": {n: round(c / self.cases, 3) for n, c in self.changed.items() if self.cases},
                "pattern_share": round(self.with_pattern / self.cases, 3) if self.cases else 0.0,
                "patterns": dict(self.coverage.pattern_uses),
                "mean_depth": round(self.depth / self.cases, 2) if self.cases else 0.0,
                "op_types": len(self.coverage.ops),
            },
        }


Progress = Callable[[int, Totals, float], None]
Lane = Union[PipelineLane, LocalLane, "RayLane"]
POLL_SECONDS = 1.0  # how often a campaign waiting on its lanes looks at their limits
SHARED_DESCRIPTION = ("nodes", "depth", "ops", "dtypes", "kinds", "patterns", "mutated_from")  # a value set's, as drawn


def case_seed(campaign_seed: int, index: int) -> int:
    """Independent, reproducible seed for case `index` of a campaign."""
    return int(np.random.SeedSequence([campaign_seed, index]).generate_state(1)[0])


def run_campaign(
    options: CampaignOptions,
    resume: bool = False,
    progress: Progress | None = None,
    session: OracleSession | None = None,
    probe_progress: ProbeProgress | None = None,
    pipeline: type[CasePipeline] = CasePipeline,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Run until the case or time budget is spent; every finding is on disk before the next case.

    Cases run in `options.jobs` lanes, child processes with their own backend workers, or Ray actors
    on the cluster at `ray_address`; a caller may instead lend a started `session` (tests share warm
    workers), run in this process.
    """
    out = options.out
    check_output(options, resume)
    lanes: list[Lane]
    if session is not None:
        lanes = [LocalLane(pipeline(options, session))]
    elif ray_address is not None:
        from fuzzer.campaign.ray_lane import RayLane, connect  # the ray extra: imported only when asked for

        connect(ray_address)
        lanes = [RayLane(options, pipeline) for _ in range(options.jobs)]
    else:
        lanes = [PipelineLane(options, pipeline) for _ in range(options.jobs)]
    try:
        for lane in lanes:
            lane.launch()
        infos = [lane.wait_ready() for lane in lanes].pop()  # every lane runs the same backends
        weight = _support(options, infos, session, probe_progress)
        known = KnownBugs.load(Path(options.known)) if options.known else KnownBugs()
        weight = known.weight(weight)  # reads the triggers as they grow: a bug filed now is drawn less next
        records = open_records(out, resume)  # the folder is made only now that every backend started
        _write_campaign(options, infos, records)
        return _Campaign(options, lanes, infos, records, weight, progress, known).run()
    except OSError as error:
        if not disk_full(error):
            raise
        where = f" ({error.filename})" if error.filename else ""
        raise CampaignError(
            f"disk full{where}: the campaign stopped with every recorded case whole; free space and run "
            f"`dlfuzz fuzz --resume --out {out}`"
        ) from None
    finally:
        for lane in lanes:
            lane.close()


def _support(
    options: CampaignOptions,
    infos: dict[str, BackendInfo],
    session: OracleSession | None,
    progress: ProbeProgress | None,
) -> DrawWeight | None:
    """The support matrix's draw weight: cached for these versions, or probed (once) on a session
    of this process's own when the lanes' backends are in children."""
    if not options.support_matrix:
        return None
    if session is not None:
        return load_or_probe(session, progress).draw_weight
    matrix = cached_matrix(infos)
    if matrix is None:
        missing = [infos[name].source for name in unprobed(infos)]
        with OracleSession(missing, options.timeout, options.memory_mb) as probing:
            load_or_probe(probing, progress)
        matrix = cached_matrix(infos)
        assert matrix is not None, "the backends not cached were just probed"
    return matrix.draw_weight


class _Campaign:
    """The dispatch loop over lanes. A lane judges `batch` consecutive cases at a time (batches start
    at multiples of `batch` from where the run started); case i is drawn once cases 0..i-jobs*batch
    are recorded, and cases are filed and recorded in order, so the same seed, jobs and batch give
    the same campaign however the lanes' timings fall."""

    def __init__(
        self,
        options: CampaignOptions,
        lanes: list[Lane],
        infos: dict[str, BackendInfo],
        records: Records,
        weight: DrawWeight | None,
        progress: Progress | None,
        known: KnownBugs,
    ) -> None:
        self.options = options
        self.lanes = lanes
        # A lane takes a batch, or a graph's value sets (its workers keep the graph compiled between them).
        self.batch = max(batch_sizes(options, infos).values(), default=options.value_sets)
        self.ahead = options.jobs * self.batch  # cases drawn before their turn to be judged
        self.weight = weight
        self.progress = progress
        compositions = {name: info.compositions for name, info in infos.items()}
        self.totals = Totals(known_bugs=known, coverage=Coverage(compositions))
        for line in records.lines:
            self._count(line)
        summary_path = options.out / SUMMARY  # written after each stats line: at most one case behind
        resumed = records.lines and summary_path.exists()
        self.previous_seconds = json.loads(summary_path.read_text())["seconds"] if resumed else 0.0
        self.feedback = Feedback.resume(options.out / POOL, records.lines, compositions) if options.feedback else None
        self.recorded = self.start = len(records.lines)
        self.group: tuple[dict[str, Any], Graph | None] | None = None  # the drawn case whose graph value sets share
        self.planned: deque[tuple[dict[str, Any], Graph | None]] = deque()
        self.judged: dict[int, Judged] = {}  # judged cases waiting for their turn to be filed and recorded
        self.drawn: dict[int, tuple[dict[str, Any], Graph | None]] = {}  # lines and graphs as drawn, until recorded
        self.running: dict[int, tuple[str, list[int]]] = {}  # lane -> (request, case indices)
        self.alone: set[int] = set()  # cases of a batch whose lane died: judged again one at a time
        self.drawn_all = False
        self.filing: int | None = None
        self.unreduced: set[int] = set()  # cases whose filing failed once: filed again without reduction
        self.bugs = BugFolders(options.out / BUGS, record_filing)
        self.graph_filed: tuple[str, dict[str, str]] = ("", {})  # the graph filed last, its mismatches' folders
        self.restarts = dict.fromkeys(infos, 0)  # backend workers' restarts in every lane
        self.limit = 2 * options.timeout + 120  # seconds a lane may take to judge a case
        self.started = time.monotonic()  # throughput and --time exclude start-up and the support probe

    def run(self) -> dict[str, Any]:
        for index in range(self.recorded, self.recorded + self.ahead):
            self._plan(index)
        while self.planned or self.running or self.judged:
            self._dispatch()
            self._wait()
            self._record_ready()
        path = self.options.out / SUMMARY
        return json.loads(path.read_text()) if path.exists() else {}

    def elapsed(self) -> float:
        return self.previous_seconds + time.monotonic() - self.started

    def _plan(self, index: int) -> None:
        if self.options.max_tests is not None and index >= self.options.max_tests:
            self.drawn_all = True
            return
        if (index - self.start) % self.options.value_sets and self.group is not None and self.group[1] is not None:
            self.planned.append(value_set(self.group, index, self.options.seed))
        else:
            self.group = draw_case(self.options, index, self.weight, self.feedback)
            self.planned.append(self.group)

    def _dispatch(self) -> None:
        free = [i for i, lane in enumerate(self.lanes) if not lane.busy]
        ready = self.judged.get(self.recorded)
        if ready is not None and ready.needs_filing and self.filing is None and free:
            lane = free.pop(0)
            budget = 0.0 if self.recorded in self.unreduced else self.options.reduce_budget
            self.lanes[lane].submit(file_call, ready, budget, BugIndex.read(self.bugs), self._seen_of(ready.line))
            self.running[lane] = ("file", [self.recorded])
            self.filing = self.recorded
        while free and self.planned:
            size = 1 if int(self.planned[0][0]["id"]) in self.alone else self.batch
            if len(self.planned) < size and not self.drawn_all:
                break
            cases = []
            for line, graph in [self.planned.popleft() for _ in range(min(size, len(self.planned)))]:
                index = int(line["id"])
                if not _budget_left(self.options, index, self.elapsed()):
                    self.planned.clear()
                    break
                self.drawn[index] = (line, graph)
                if graph is None:  # generation failed: nothing for a lane to do
                    self.judged[index] = Judged(line)
                    continue
                cases.append((line, graph))
            if cases:
                lane = free.pop(0)
                self.lanes[lane].submit(judge_call, cases)
                self.running[lane] = ("judge", [int(line["id"]) for line, _ in cases])

    def _wait(self) -> None:
        busy = [self.lanes[i] for i in self.running]
        if busy:  # every lane of a campaign is of one kind
            type(busy[0]).wait_any(busy, POLL_SECONDS)
        for lane_index, (request, indices) in list(self.running.items()):
            lane = self.lanes[lane_index]
            limit = self._file_limit(indices[0]) if request == "file" else self.limit * len(indices)
            if not lane.replied() and not lane.overdue(limit):
                continue
            del self.running[lane_index]
            reply = lane.collect(limit)
            if request == "judge" and reply.status == "ok":
                for index, judged in zip(indices, reply.value):
                    self.judged[index] = judged
                    _add_seconds(judged.line, "ipc", reply.ipc_seconds / len(indices))
                    for name, count in judged.restarts.items():
                        self.restarts[name] += count
            elif request == "judge" and len(indices) > 1:
                self._judge_alone(indices)
            elif request == "judge":
                self.judged[indices[0]] = self._skipped(indices[0], reply)
            else:
                self._filed(indices[0], reply)

    def _seen_of(self, line: dict[str, Any]) -> dict[str, str]:
        """What earlier value sets of the case's graph filed: cases are filed in order, so those came just before."""
        graph, seen = self.graph_filed
        return seen if graph == _graph_of(line) else {}

    def _file_limit(self, index: int) -> float:
        """Seconds a lane may take to file a case: each finding's reduction, upstream search, ablations
        and bisection have a budget each, and run backends past it."""
        verdict = self.judged[index].verdict
        findings = len(verdict.findings) if verdict is not None else 1
        return 4 * findings * (self.options.timeout + self.options.reduce_budget) + 120

    def _judge_alone(self, indices: list[int]) -> None:
        """A batch whose lane died or hung: its cases go back to the front of the queue, to be judged
        one at a time, so the death skips only the case that caused it."""
        self.alone.update(indices)
        self.planned.extendleft(self.drawn[index] for index in reversed(indices))

    def _skipped(self, index: int, reply: Reply) -> Judged:
        """A case whose lane died or hung while judging it: kept for inspection, not compared."""
        line, graph = self.drawn[index]
        if graph is not None:
            TestCase(graph, {}, {"seed": line["seed"], "id": line["id"]}).save(self.options.out / SKIPPED / line["id"])
        return Judged(line | {"verdict": "skipped", "failure": _failure(reply), "backends": {}})

    def _filed(self, index: int, reply: Reply) -> None:
        judged = self.judged[index]
        self.filing = None
        if reply.status == "ok":
            filed = reply.value
            filed.shipment.apply(self.bugs)
            judged.line["bugs"], judged.line["known"] = filed.bugs, filed.known
            self.graph_filed = (_graph_of(judged.line), self._seen_of(judged.line) | filed.seen)
            # The backends' compiles and runs while reducing are theirs, as in judging; the rest is triage's.
            _add_seconds(judged.line, "triage", reply.work_seconds - filed.backends.waited)
            for name, seconds in filed.backends.backend_seconds.items():
                _add_seconds(judged.line, name, seconds)
            _add_seconds(judged.line, "ipc", reply.ipc_seconds)
            judged.filed = True
            return
        judged.line.setdefault("triage_failures", []).append(_failure(reply))
        # Filed once more without reduction, which runs only the backends (in their own workers); a
        # second failure leaves the findings in the line alone.
        judged.filed = index in self.unreduced
        self.unreduced.add(index)

    def _record_ready(self) -> None:
        while self.recorded in self.judged:
            judged = self.judged[self.recorded]
            if judged.needs_filing:
                return
            del self.judged[self.recorded]
            _, graph = self.drawn.pop(self.recorded)
            line = judged.line
            if line.get("verdict") == "invalid" and judged.case is not None:
                judged.case.save(self.options.out / INVALID / line["id"])
            if self.feedback:
                self.feedback.learn(line, graph)
            elapsed = self.elapsed()
            line["elapsed"] = round(elapsed, 2)
            append_line(self.options.out / STATS, line)
            self._count(line)
            summary = self.totals.summary(elapsed)
            summary["worker_restarts"] = self._worker_restarts()
            write_atomic(self.options.out / SUMMARY, json.dumps(summary, indent=1, sort_keys=True).encode())
            self.recorded += 1
            if self.progress:
                self.progress(self.recorded, self.totals, elapsed)
            self._plan(self.recorded + self.ahead - 1)

    def _count(self, line: dict[str, Any]) -> None:
        """Add a recorded case to the totals; with feedback, a bug it filed first is known from now on, so
        that what triggers it is drawn less in the cases drawn after it (feedback off keeps -j N's cases
        those of -j 1: lanes draw ahead of what is recorded)."""
        learned = set(line.get("bugs", [])) - self.totals.bugs if self.options.feedback else set()
        for sig in sorted(learned):
            if (self.options.out / BUGS / sig / META).is_file():
                self.totals.known_bugs.learn(self.options.out / BUGS / sig)
        self.totals.add(line)

    def _worker_restarts(self) -> dict[str, int]:
        """Backend workers restarted in every lane, and lanes restarted (`pipeline`)."""
        return self.restarts | {"pipeline": sum(lane.restarts for lane in self.lanes)}


def _graph_of(line: dict[str, Any]) -> str:
    """The case whose drawn graph a stats line's case runs: another value set's, or its own."""
    return line.get(GRAPH_OF, line["id"])


def _add_seconds(line: dict[str, Any], stage: str, seconds: float) -> None:
    """Count seconds spent outside the lane's own call (or in a second filing) towards a stage."""
    stages = line["stage_seconds"]
    stages[stage] = round(stages.get(stage, 0.0) + seconds, 4)


def _failure(reply: Reply) -> dict[str, Any]:
    """How a lane failed a request, as a stats line records it."""
    return {"status": reply.status, "stage": reply.stage, "exit": reply.exit, "message": reply.message}


def _budget_left(options: CampaignOptions, index: int, elapsed: float) -> bool:
    if options.max_tests is not None and index >= options.max_tests:
        return False
    return options.time_budget is None or elapsed < options.time_budget


def _write_campaign(options: CampaignOptions, infos: dict[str, BackendInfo], records: Records) -> None:
    """campaign.json: the options a resume reads back, the versions, and every resume with what it repaired."""
    path = options.out / CAMPAIGN
    previous = json.loads(path.read_text()) if path.exists() else {}
    resumes = previous.get("resumes", [])
    if previous:
        resumes.append({"at": _now(), "cases_done": len(records.lines), "repaired": records.repaired})
    document = {
        "seed": options.seed,
        "options": options.to_json(),
        "backends": {name: asdict(info) for name, info in infos.items()},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "started": previous.get("started", _now()),
        "resumes": resumes,
    }
    write_atomic(path, json.dumps(document, indent=1, sort_keys=True).encode())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def value_set(
    drawn: tuple[dict[str, Any], Graph | None], index: int, campaign_seed: int
) -> tuple[dict[str, Any], Graph | None]:
    """Case `index` as another value set of the drawn case: its graph (whose weights the lane keeps) and
    the drawn line's description of it, with a seed of its own for the inputs."""
    line, graph = drawn
    shared = {key: line[key] for key in SHARED_DESCRIPTION if key in line}
    own = {"id": f"{index:06d}", "seed": case_seed(campaign_seed, index), GRAPH_OF: line["id"]}
    return own | shared | {"stage_seconds": {"generate": 0.0}}, graph


def draw_case(
    options: CampaignOptions, index: int, weight: DrawWeight | None, feedback: Feedback | None
) -> tuple[dict[str, Any], Graph | None]:
    """Generate case `index` (Z3 only: no graph runs here) and start its stats line; the graph is
    None when generation failed, and the line then says why."""
    seed = case_seed(options.seed, index)
    line: dict[str, Any] = {"id": f"{index:06d}", "seed": seed}
    plan = feedback.plan(seed, weight) if feedback else Plan(weight)
    clock = time.monotonic()
    try:
        graph = generate(seed, options.gen, plan.op_weight, plan.pattern_weight, plan.base)
    except Exception as error:  # our own bug: record it and go on
        failed = {"nodes": 0, "ops": [], "verdict": "invalid", "problems": [problem_line(error)], "stage_seconds": {}}
        return line | failed, None
    line |= {
        "nodes": len(graph.nodes),
        "depth": graph.depth(),
        "ops": graph.op_types(),
        "dtypes": sorted({t.dtype for t in graph.types.values()}),
        "kinds": node_kinds(graph),
        "patterns": occurrences(graph),
        "stage_seconds": {"generate": time.monotonic() - clock},
    }
    if plan.base_id:
        line["mutated_from"] = plan.base_id
    return line, graph
