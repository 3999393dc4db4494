"""A case's pipeline after generation: values, validity checks, the backends' verdict, and triage.

These stages execute graphs (torch eager in the search and the checks, float64 attribution, the
reducer), and torch can trap on integer arithmetic (SIGFPE) or crash, so a campaign runs them in
child processes (`PipelineLane`): a crash there skips one case, kept for inspection, and the
campaign goes on. Each lane owns its backend workers, so lanes run cases side by side (`-j`).
"""

from __future__ import annotations

import functools
import multiprocessing.connection
import shutil
import tempfile
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from fuzzer.campaign.known import KnownBugs
from fuzzer.campaign.state import CampaignOptions
from fuzzer.core.files import write_atomic
from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from fuzzer.generate.validate import check_onnx, check_torch
from fuzzer.inputs.sampling import Uncomparable, sample_values, uncomparable
from fuzzer.inputs.search import SearchOptions, search_values
from fuzzer.judge import judge_cases
from fuzzer.judge.compare import Verdict
from fuzzer.report.bug import add_occurrence, record_filing
from fuzzer.triage.filing import FILED, BugFolders, Filing, file_findings, value_set_key
from oracles.base import BackendInfo, Outcome
from oracles.session import Meter, OracleSession
from oracles.worker import ChildWorker, Reply
from specs.interpret import evaluate
from specs.lowering import to_onnx

STAGES = ("search", "validate", "judge", "triage")
GRAPH_OF = "graph_of"  # a stats line's key: the case whose graph and weights this value set shares
STARTUP_SECONDS = 600.0  # every backend of a lane imports and warms up in it


class Stage(Protocol):
    """Where a pipeline marks the stage it is in (shared memory in a lane's child process)."""

    value: int


@dataclass
class Marker:
    """A stage marker for a pipeline run in this process, where nobody reads it from outside."""

    value: int = 0


def mark(stage: Stage, name: str) -> None:
    stage.value = STAGES.index(name) + 1


@dataclass
class Prepared:
    """A case with its values, why its outputs cannot be compared (None: they can), and what the
    validity checks found."""

    case: TestCase
    uncomparable: Uncomparable | None
    problems: list[str]
    seconds: dict[str, float]

    @property
    def finite(self) -> bool:
        return self.uncomparable is None or self.uncomparable.kind != "nonfinite"


def prepare_case(
    graph: Graph,
    seed: int,
    search: SearchOptions | None,
    stage: Stage = Marker(),
    weights: dict[str, np.ndarray] | None = None,
) -> Prepared:
    """Find values for a generated graph (by the input search, or random sampling when `search` is
    None; the given `weights` kept) and check the case is valid."""
    seconds: dict[str, float] = {}
    mark(stage, "search")
    clock = time.monotonic()
    result = search_values(graph, seed, search, weights) if search else sample_values(graph, seed, held=weights)
    seconds["search"] = time.monotonic() - clock
    case = TestCase(graph, result.values, {"seed": seed, "search": result.summary()})
    mark(stage, "validate")
    clock = time.monotonic()
    problems = check_onnx(graph, to_onnx(graph, case.weights))
    tensors = evaluate(graph, case.values)
    problems += check_torch(graph, tensors)
    seconds["validate"] = time.monotonic() - clock
    return Prepared(case, uncomparable(graph, tensors), problems, seconds)


@dataclass
class Judged:
    """A case back from the backends: its stats line so far, and what triage needs to file it."""

    line: dict[str, Any]
    case: TestCase | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    verdict: Verdict | None = None
    restarts: dict[str, int] = field(default_factory=dict)  # the lane's backend worker restarts since its last reply
    filed: bool = False

    @property
    def needs_filing(self) -> bool:
        """Findings to file: an invalid case's (its references disagree, our bug) are filed nowhere."""
        return (
            not self.filed
            and self.verdict is not None
            and self.verdict.kind != "invalid"
            and bool(self.verdict.findings)
        )


class CasePipeline:
    """Values, checks, backends and triage for one case at a time, on one session's backends."""

    def __init__(self, options: CampaignOptions, session: OracleSession) -> None:
        self.options = options
        self.session = session
        self.known = KnownBugs.load(Path(options.known)) if options.known else KnownBugs()
        self.reported_restarts = Counter(session.restarts)  # a lent session may have restarted workers before
        self.scratch = Path(tempfile.mkdtemp(prefix="dlfuzz-lane-"))  # where new bug folders are written to ship
        weakref.finalize(self, shutil.rmtree, self.scratch, True)

    def judge(self, stage: Stage, cases: Sequence[tuple[dict[str, Any], Graph]]) -> list[Judged]:
        """Values, validity and every backend's verdict for generated cases, each line gaining them;
        the backends that batch compile the valid ones together (judge_cases says how)."""
        judged: dict[int, Judged] = {}
        ready: list[tuple[int, dict[str, Any], Prepared]] = []
        firsts: dict[str, Prepared] = {}  # by case id: a graph's first value set, whose weights the others keep
        for position, (line, graph) in enumerate(cases):
            prepared = self.prepare(stage, line, graph, firsts.get(line.get(GRAPH_OF, "")))
            if isinstance(prepared, Judged):
                judged[position] = prepared
            else:
                ready.append((position, line | {"search": prepared.case.meta["search"]}, prepared))
                firsts[line["id"]] = prepared
        mark(stage, "judge")
        results = judge_cases(
            self.session,
            [prepared.case for _, _, prepared in ready],
            [prepared.uncomparable for _, _, prepared in ready],
            batch_sizes(self.options, self.session.infos),
        )
        for (position, line, prepared), (outcomes, verdict, own_seconds) in zip(ready, results):
            line["stage_seconds"] = line["stage_seconds"] | own_seconds
            judged[position] = self._judged(line, prepared, outcomes, verdict)
        return [judged[position] for position in range(len(cases))]

    def prepare(
        self, stage: Stage, line: dict[str, Any], graph: Graph, first: Prepared | None = None
    ) -> Prepared | Judged:
        """A generated case with its values (the weights of its graph's `first` value set kept), or its
        line judged invalid (values or checks failed).

        Where the search could not make the first value set finite, the others are sampled: with its
        weights kept, none came out finite in three campaigns (0 of 9), and their searches had cost a
        quarter and nearly half of two campaigns' search time; they still run, for crashes."""
        search = self.options.search if first is None or first.finite else None
        weights = first.case.weights if first is not None else None
        try:
            prepared = prepare_case(graph, line["seed"], search, stage, weights)
        except Exception as error:  # our own bug (a spec torch rejects, say): record it and go on
            return Judged(line | {"verdict": "invalid", "problems": [problem_line(error)], "backends": {}})
        prepared.case.meta["id"] = line["id"]
        if not prepared.problems:
            return prepared
        seconds = line["stage_seconds"] | prepared.seconds
        invalid = {"search": prepared.case.meta["search"], "stage_seconds": seconds, "verdict": "invalid"}
        return Judged(line | invalid | {"problems": prepared.problems, "backends": {}}, prepared.case)

    def _judged(
        self, line: dict[str, Any], prepared: Prepared, outcomes: dict[str, Outcome], verdict: Verdict
    ) -> Judged:
        # A case the search could not make finite and in domain still ran: crashes count, values were not compared.
        case, seconds = prepared.case, line["stage_seconds"] | prepared.seconds
        for name, outcome in outcomes.items():
            seconds[name] = outcome.seconds
        line["backends"] = {
            name: outcome.summary() | {"status": verdict.statuses[name]} for name, outcome in outcomes.items()
        }
        line["verdict"] = verdict.kind
        if verdict.reason:
            line["reason"] = verdict.reason
        line["bugs"], line["known"] = [], []
        line["stage_seconds"] = {k: round(v, 4) for k, v in seconds.items()}
        return Judged(line, case, outcomes, verdict, self._new_restarts())

    def _new_restarts(self) -> dict[str, int]:
        """Backend worker restarts since the last reply said: the campaign adds them up, so a lane that
        dies and starts again loses none of its earlier life's."""
        now = Counter(self.session.restarts)
        new, self.reported_restarts = now - self.reported_restarts, now
        return dict(new)

    def file(self, stage: Stage, judged: Judged, reduce_budget: float, filed: BugIndex, seen: dict[str, str]) -> Filed:
        """File the case's findings (reducing new ones for up to `reduce_budget` seconds each) against
        the campaign's bugs as `filed` says they are, given what earlier value sets of its graph filed
        (`seen`, by `value_set_key`); the folders and sightings come back in the reply."""
        mark(stage, "triage")
        assert judged.case is not None and judged.verdict is not None
        kept, store = self.known.folders, ShippedFilings(filed, self.scratch)
        case, outcomes, verdict = judged.case, judged.outcomes, judged.verdict
        before = self.session.meter.copy()
        found = file_findings(store, case, outcomes, verdict, self.session, reduce_budget, kept, seen)
        keys = {value_set_key(f): sig for f, sig in zip(verdict.findings, found, strict=True)}
        keys.pop("", None)
        new, again = [sig for sig in found if sig not in kept], [sig for sig in found if sig in kept]
        return Filed(new, again, keys, store.shipment, self.session.meter.since(before))


class Filed(NamedTuple):
    """A filed case: the signatures of its new bugs and of the kept ones it found again, the folder
    of each of its mismatches by `value_set_key`, for the graph's later value sets, and what filing
    waited on the backends (their compiles and runs while reducing)."""

    bugs: list[str]
    known: list[str]
    seen: dict[str, str]
    shipment: Shipment
    backends: Meter


class BugIndex(NamedTuple):
    """What a lane must know of the campaign's bug folders to file against them: their aliases and
    which folders are complete."""

    aliases: dict[str, str]
    filed: set[str]

    @classmethod
    def read(cls, bugs: BugFolders) -> BugIndex:
        return cls(bugs.aliases(), bugs.filed())


@dataclass
class Shipment:
    """What a lane filed, for the campaign to write into its folder: lanes never write it themselves, so
    one may run on a machine that does not mount it (a Ray actor)."""

    folders: dict[str, dict[str, bytes]] = field(default_factory=dict)  # a new folder's files, by path in it
    sightings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # later sightings, in order
    aliases: dict[str, str] = field(default_factory=dict)

    def apply(self, bugs: BugFolders) -> None:
        """Write the shipment; a folder's meta.json last, since it marks the folder complete."""
        for name, files in self.folders.items():
            for relative in sorted(files, key=lambda path: path == FILED):
                target = bugs.root / name / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(target, files[relative])
        for name, occurrence in self.sightings:
            add_occurrence(bugs.root / name, occurrence)
        if self.aliases:
            bugs.add_aliases(self.aliases)


class ShippedFilings:
    """A lane's BugStore: reads a BugIndex the campaign sent, writes each new folder in the lane's
    scratch folder (running its repro there) and ships its files, and ships each later sighting."""

    def __init__(self, index: BugIndex, scratch: Path) -> None:
        self.index = BugIndex(dict(index.aliases), set(index.filed))
        self.scratch = scratch
        self.shipment = Shipment()

    def aliases(self) -> dict[str, str]:
        return dict(self.index.aliases)

    def is_filed(self, name: str) -> bool:
        return name in self.index.filed

    def add_aliases(self, added: dict[str, str]) -> None:
        self.index.aliases.update(added)
        self.shipment.aliases.update(added)

    def record(self, filing: Filing) -> None:
        if self.is_filed(filing.signature):
            self.shipment.sightings.append((filing.signature, filing.occurrence))
            return
        folder = self.scratch / filing.signature
        record_filing(folder, filing)
        files = {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
        self.shipment.folders[filing.signature] = files
        shutil.rmtree(folder)
        self.index.filed.add(filing.signature)


def problem_line(error: Exception) -> str:
    """An exception of our own stages as one line of a stats line's `problems`."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def judge_call(pipeline: CasePipeline, stage: Stage, cases: Sequence[tuple[dict[str, Any], Graph]]) -> list[Judged]:
    """A lane's request to judge cases (a module-level function: requests cross process borders)."""
    return pipeline.judge(stage, cases)


def batch_sizes(options: CampaignOptions, infos: dict[str, BackendInfo]) -> dict[str, int]:
    """How many cases each batchable backend compiles as one graph: `options.batch`, or where that is
    None the backend's measured default; 1 turns batching off, and so do value sets (a batch of one
    graph's value sets would compile the graph once per value set, side by side)."""
    if options.value_sets > 1:
        return {}
    sizes = {name: options.batch or info.batch_size for name, info in infos.items() if info.batchable}
    return {name: size for name, size in sizes.items() if size > 1}


def file_call(
    pipeline: CasePipeline, stage: Stage, judged: Judged, reduce_budget: float, filed: BugIndex, seen: dict[str, str]
) -> Filed:
    """A lane's request to file a judged case's findings."""
    return pipeline.file(stage, judged, reduce_budget, filed, seen)


def start_pipeline(
    options: CampaignOptions, pipeline_class: type[CasePipeline]
) -> tuple[CasePipeline, dict[str, BackendInfo]]:
    """A lane's set-up, run in its child: start the backends and the pipeline on them. The lane's own
    torch work (checks, float64 attribution, reduction) runs on one thread: lanes share the cores."""
    torch.set_num_threads(1)
    session = OracleSession(list(options.backends), options.timeout, options.memory_mb)
    session.start()
    return pipeline_class(options, session), session.infos


class PipelineLane(ChildWorker):
    """A case pipeline in a child process with its own backend workers."""

    def __init__(self, options: CampaignOptions, pipeline_class: type[CasePipeline] = CasePipeline) -> None:
        setup = functools.partial(start_pipeline, options, pipeline_class)
        super().__init__(setup, "case pipeline", STAGES, None, STARTUP_SECONDS, daemon=False)

    def replied(self) -> bool:
        """Whether the request in flight has its reply, or the child is gone (its pipe then reads EOF)."""
        return self.connection is not None and self.connection.poll()

    @staticmethod
    def wait_any(lanes: list[PipelineLane], timeout: float) -> None:
        """Block until one of the busy `lanes` replies, or `timeout` seconds pass."""
        multiprocessing.connection.wait([lane.connection for lane in lanes if lane.connection], timeout)


class LocalLane:
    """A pipeline in this process on a lent, started session: tests share warm workers this way.
    It answers each request at once, so a campaign waits on it as on a lane that is always ready."""

    def __init__(self, pipeline: CasePipeline) -> None:
        self.pipeline = pipeline
        self.restarts = 0
        self._reply: Reply | None = None

    @property
    def busy(self) -> bool:
        return self._reply is not None

    def replied(self) -> bool:
        return True

    @staticmethod
    def wait_any(lanes: list[LocalLane], timeout: float) -> None:
        """Nothing to wait for: a local lane replies as it is asked."""

    def launch(self) -> None:
        """Nothing to start: the lent session is running."""

    def wait_ready(self) -> dict[str, BackendInfo]:
        return self.pipeline.session.infos

    def submit(self, call: Any, *args: Any) -> None:
        clock = time.monotonic()
        value = call(self.pipeline, Marker(), *args)
        seconds = time.monotonic() - clock
        self._reply = Reply("ok", value, seconds=seconds, work_seconds=seconds)

    def collect(self, timeout: float) -> Reply:
        reply, self._reply = self._reply, None
        assert reply is not None
        return reply

    def overdue(self, limit: float) -> bool:
        return False

    def close(self) -> None:
        """The session is the lender's to close."""
