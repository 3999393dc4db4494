"""A set of backend workers that runs each case on every backend at once."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import TracebackType

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
        for worker in workers:
            worker.submit_case(case, (restrictions or {}).get(worker.name, FULL))
        return {worker.name: worker.collect_outcome() for worker in workers}

    @property
    def restarts(self) -> dict[str, int]:
        return {worker.name: worker.restarts for worker in self.workers.values()}

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
