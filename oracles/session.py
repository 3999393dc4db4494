"""A set of backend workers that runs each case on every backend at once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType

from fuzzer.core.ir import merge_graphs
from fuzzer.core.testcase import TestCase
from oracles.base import FULL, BackendInfo, Outcome, Restriction
from oracles.worker import BackendWorker


class OracleSession:
    """Long-lived workers for the chosen backends; warm-up is paid once per session."""

    def __init__(self, backends: list[str], timeout: float = 60.0, memory_mb: int | None = 8192) -> None:
        if not backends:
            raise ValueError("no backends given")
        self.workers = {ref: BackendWorker(ref, timeout, memory_mb) for ref in backends}
        self.infos: dict[str, BackendInfo] = {}
        self.meter = Meter()

    def __enter__(self) -> OracleSession:
        self.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.close()

    def start(self) -> dict[str, BackendInfo]:
        for worker in self.workers.values():
            worker.launch()
        try:
            for worker in self.workers.values():
                info = worker.wait_ready()
                self.infos[info.name] = info
        except BaseException:
            self.close()
            raise
        return self.infos

    def run(
        self, case: TestCase, only: Collection[str] | None = None, restrictions: Mapping[str, Restriction] | None = None
    ) -> dict[str, Outcome]:
        """Every backend's Outcome for the case (or those named in `only`, each under its restriction
        if one is named), keyed by backend name; they run concurrently."""
        workers = [w for w in self.workers.values() if only is None or w.name in only]
        started = time.monotonic()
        for worker in workers:
            worker.submit_case(case, (restrictions or {}).get(worker.name, FULL))
        outcomes = {worker.name: worker.collect_outcome() for worker in workers}
        self.meter.add(time.monotonic() - started, outcomes)
        return outcomes

    def run_many(self, cases: Sequence[TestCase], batch_sizes: Mapping[str, int]) -> list[dict[str, Outcome]]:
        """Every backend's Outcome for each case, as `run` gives them, with the backends named in
        `batch_sizes` compiling up to that many cases as one graph (see `MergedRun`); their first
        batches run while the other backends take the cases one at a time. All in this thread: a
        worker restarted from another would die with it (PR_SET_PDEATHSIG follows the thread)."""
        batched = {
            w.name: MergedRun(w, cases, batch_sizes[w.name])
            for w in self.workers.values()
            if batch_sizes.get(w.name, 1) > 1
        }
        alone = [w.name for w in self.workers.values() if w.name not in batched]
        for run in batched.values():
            run.submit_next()
        outcomes = [self.run(case, alone) if alone else {} for case in cases]
        for name, run in batched.items():
            for case_outcomes, outcome in zip(outcomes, run.finish()):
                case_outcomes[name] = outcome
        return outcomes

    @property
    def restarts(self) -> dict[str, int]:
        return {worker.name: worker.restarts for worker in self.workers.values()}

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


@dataclass
class Meter:
    """Where a session's caller waited on its backends, and each backend's seconds, summed over `run`
    calls: what triage spends in compilers is theirs, not dlfuzz's."""

    waited: float = 0.0
    backend_seconds: Counter[str] = field(default_factory=Counter)

    def add(self, waited: float, outcomes: Mapping[str, Outcome]) -> None:
        self.waited += waited
        self.backend_seconds.update({name: outcome.seconds for name, outcome in outcomes.items()})

    def since(self, earlier: Meter) -> Meter:
        """What was metered after `earlier` (a copy taken then)."""
        return Meter(self.waited - earlier.waited, self.backend_seconds - earlier.backend_seconds)

    def copy(self) -> Meter:
        return Meter(self.waited, Counter(self.backend_seconds))


def merged_case(cases: Sequence[TestCase]) -> tuple[TestCase, list[dict[str, str]]]:
    """Independent cases as one, side by side, with each case's renaming of its tensors."""
    graph, renames = merge_graphs([case.graph for case in cases])
    values = {rename[name]: value for case, rename in zip(cases, renames) for name, value in case.values.items()}
    return TestCase(graph, values), renames


class MergedRun:
    """Each case's Outcome on one worker from as few compiles as may be: up to `batch_size` cases
    merged into one graph, and a merged run that does not end ok split in halves until each failure
    is one case's own, from a run of that case alone."""

    def __init__(self, worker: BackendWorker, cases: Sequence[TestCase], batch_size: int) -> None:
        self.worker = worker
        self.cases = cases
        self.groups = [list(range(i, min(i + batch_size, len(cases)))) for i in range(0, len(cases), batch_size)]
        self.outcomes: dict[int, Outcome] = {}
        self.in_flight: tuple[list[int], list[dict[str, str]]] | None = None

    def submit_next(self) -> None:
        """Send the next group to the worker (without waiting for it): a lone case as it is."""
        group = self.groups.pop()
        case, renames = (self.cases[group[0]], []) if len(group) == 1 else merged_case([self.cases[i] for i in group])
        self.worker.submit_case(case)
        self.in_flight = (group, renames)

    def finish(self) -> list[Outcome]:
        """Every case's Outcome, in case order, once every group (and every half of a failed one) ran."""
        while self.in_flight is not None or self.groups:
            if self.in_flight is None:
                self.submit_next()
            assert self.in_flight is not None
            (group, renames), self.in_flight = self.in_flight, None
            outcome = self.worker.collect_outcome()
            if len(group) == 1:
                self.outcomes[group[0]] = outcome
            elif outcome.status != "ok" or outcome.outputs is None:
                self.groups += [group[: len(group) // 2], group[len(group) // 2 :]]
            else:
                phases = {phase: seconds / len(group) for phase, seconds in outcome.phase_seconds.items()}
                for index, rename in zip(group, renames):
                    outputs = {name: outcome.outputs[rename[name]] for name in self.cases[index].graph.outputs}
                    self.outcomes[index] = replace(
                        outcome,
                        outputs=outputs,
                        seconds=outcome.seconds / len(group),
                        phase_seconds=phases,
                        batch=len(group),
                    )
        return [self.outcomes[index] for index in range(len(self.cases))]


def run_merged(worker: BackendWorker, cases: Sequence[TestCase], batch_size: int) -> list[Outcome]:
    """Each case's Outcome on the worker, up to `batch_size` cases compiled at once (see MergedRun)."""
    return MergedRun(worker, cases, batch_size).finish()
