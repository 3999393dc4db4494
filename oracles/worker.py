"""Backends run in long-lived child processes, so a crash, abort, hang or leak costs one case."""

from __future__ import annotations

import faulthandler
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from fuzzer.core.testcase import TestCase
from oracles.base import FULL, PHASES, BackendInfo, Outcome, Restriction, Unsupported
from oracles.registry import load_backend

LOG_TAIL_BYTES = 4000
FAULTHANDLER_REPORT = "Fatal Python error:"


class WorkerStartError(RuntimeError):
    """A backend's worker could not start (import error, setup failure, start-up timeout)."""


class BackendWorker:
    """One backend in one child process; replaced by a fresh one whenever it dies or hangs."""

    def __init__(
        self,
        ref: str,
        timeout: float = 60.0,
        memory_mb: int | None = 8192,
        startup_timeout: float = 300.0,
    ) -> None:
        self.ref = ref
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.startup_timeout = startup_timeout
        self.info: BackendInfo | None = None
        self.restarts = 0
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._phase: Any = None
        self._log: Path | None = None
        self._log_start = 0  # where the running case's output begins in the worker's log
        self._submitted_at: float | None = None

    @property
    def name(self) -> str:
        return self.info.name if self.info else self.ref

    def start(self) -> BackendInfo:
        """Start the child and wait for its backend to be imported and warmed up."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the child without waiting, so several backends warm up at once."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._phase = context.Value("i", 0)
        handle, log_name = tempfile.mkstemp(prefix="dlfuzz-worker-", suffix=".log")
        os.close(handle)
        if self._log is not None:
            self._log.unlink(missing_ok=True)
        self._log = Path(log_name)
        self._process = context.Process(
            target=_serve, args=(self.ref, child, self._phase, self.memory_mb, log_name), daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent

    def wait_ready(self) -> BackendInfo:
        assert self._conn is not None
        if not self._conn.poll(self.startup_timeout):
            self._kill()
            raise WorkerStartError(f"backend {self.ref}: worker did not start in {self.startup_timeout:.0f}s")
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            tail = self._log_tail().strip().splitlines()
            self._kill()
            raise WorkerStartError(
                f"backend {self.ref}: worker died while starting: {tail[-1] if tail else ''}"
            ) from None
        if kind != "ready":
            self._kill()
            raise WorkerStartError(f"backend {self.ref}: {payload}")
        self.info = payload
        return payload

    def submit(self, case: TestCase, restriction: Restriction = FULL) -> None:
        """Send a case (to run with the restriction); `collect` waits for the result, so several
        backends can work at once."""
        if self._process is None or not self._process.is_alive():
            self.restarts += self._process is not None
            self.start()
        assert self._conn is not None
        self._phase.value = 0
        self._log_start = self._log.stat().st_size if self._log is not None and self._log.exists() else 0
        self._conn.send((case, restriction))
        self._submitted_at = time.monotonic()

    def collect(self) -> Outcome:
        assert self._conn is not None and self._process is not None and self._submitted_at is not None
        remaining = self.timeout - (time.monotonic() - self._submitted_at)
        ready = self._conn.poll(max(remaining, 0))
        elapsed = time.monotonic() - self._submitted_at
        phase = _phase_name(self._phase.value)
        if ready:
            try:
                return self._conn.recv()
            except (EOFError, ConnectionResetError):
                pass  # the child died after the case arrived; report below
        if self._process.is_alive() and not ready:
            self._kill()
            return Outcome("timeout", phase=phase, message=f"no result after {self.timeout:.0f}s", seconds=elapsed)
        self._process.join(5)
        code = self._process.exitcode
        log = self._case_log()
        self._kill()
        return Outcome(
            "died",
            phase=phase,
            exc_type=_exit_name(code),
            message=_death_message(code, log),
            seconds=elapsed,
            details=_without_module_list(log)[-LOG_TAIL_BYTES:],
        )

    def run(self, case: TestCase, restriction: Restriction = FULL) -> Outcome:
        self.submit(case, restriction)
        return self.collect()

    def close(self) -> None:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            try:
                self._conn.send(None)
                self._process.join(5)
            except (BrokenPipeError, OSError):
                pass
        self._kill()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _log_tail(self) -> str:
        if self._log is None or not self._log.exists():
            return ""
        data = self._log.read_bytes()[-LOG_TAIL_BYTES:]
        return data.decode(errors="replace")

    def _case_log(self) -> str:
        """What the worker printed since the running case arrived (not what earlier cases printed)."""
        if self._log is None or not self._log.exists():
            return ""
        with open(self._log, "rb") as handle:
            handle.seek(self._log_start)
            return handle.read().decode(errors="replace")


def _phase_name(code: int) -> str | None:
    return PHASES[code - 1] if 0 < code <= len(PHASES) else None


def _exit_name(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def _death_message(code: int | None, log: str) -> str:
    """The line of the case's log that best says why the worker died. faulthandler's report names
    only the signal, and its module list runs longer in a warm worker: it is not read."""
    before_report = log.split(FAULTHANDLER_REPORT, 1)[0]
    for line in reversed(before_report.splitlines()):
        if any(word in line for word in ("Error", "error", "Check failed", "Assertion", "Fatal", "terminate")):
            return line.strip()[:500]
    return f"worker process ended ({_exit_name(code)})"


def _without_module_list(log: str) -> str:
    """The log without faulthandler's list of loaded extension modules (hundreds in a warm worker)."""
    return "\n".join(line for line in log.splitlines() if not line.startswith("Extension modules:"))


def _serve(ref: str, conn: multiprocessing.connection.Connection, phase: Any, memory_mb: int | None, log: str) -> None:
    """The child's loop: load the backend once, then run cases until told to stop."""
    log_fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    faulthandler.enable()
    if memory_mb:
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        backend_class, source = load_backend(ref)
        backend = backend_class()
        backend.setup()
        info = BackendInfo(backend.name, backend.frontend, backend.reference, backend.version(), source)
    except BaseException as error:
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    conn.send(("ready", info))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        case, backend.restriction = message
        try:
            conn.send(_execute(backend, case, phase))
        finally:
            backend.restriction = FULL


def _execute(backend: Any, case: TestCase, phase: Any) -> Outcome:
    outcome = _outcome(backend, case, phase)
    outcome.stages, outcome.switches = tuple(backend.stages(case)), tuple(backend.switches(case))
    return outcome


def _outcome(backend: Any, case: TestCase, phase: Any) -> Outcome:
    start = time.monotonic()
    reason = backend.unsupported(case)
    if reason:
        return Outcome("unsupported", message=reason)
    fired: dict[str, int] = {}
    try:
        phase.value = 1
        converted = backend.convert(case)
        phase.value = 2
        compiled = backend.compile(converted, case)
        fired = _fired_optimizations(backend, compiled, case)
        phase.value = 3
        outputs = backend.run(compiled, case)
        return Outcome("ok", outputs=outputs, seconds=time.monotonic() - start, optimizations=fired)
    except Unsupported as error:
        return Outcome("unsupported", phase=_phase_name(phase.value), message=_headline(str(error)))
    except Exception as error:
        text = str(error).strip()
        return Outcome(
            "error",
            phase=_phase_name(phase.value),
            exc_type=type(error).__name__,
            message=_headline(text),
            seconds=time.monotonic() - start,
            details=traceback.format_exc()[-20000:],
            optimizations=fired,
        )
    finally:
        backend.teardown()


def _fired_optimizations(backend: Any, compiled: Any, case: TestCase) -> dict[str, int]:
    """The backend's record of what its compile fired. Recording is ours, not the compiler's: a
    failure in it goes to the worker's log and leaves the record empty, never fails the case."""
    try:
        return backend.optimizations(compiled, case)
    except Exception:
        print(f"dlfuzz: recording {backend.name}'s optimizations failed", file=sys.stderr)
        traceback.print_exc()
        return {}


def _headline(text: str) -> str:
    """The informative line of a long compiler error (TVM puts it after a C++ backtrace)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if any(tag in line for tag in ("Error:", "Check failed", "error:", "[ONNXRuntimeError]")):
            return line[:500]
    return (lines[0] if lines else "")[:500]
