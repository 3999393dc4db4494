"""Work that may crash runs in long-lived child processes, so a crash, abort, hang or leak costs one
request: backends (one per worker) and the campaign's own graph-executing stages alike."""

from __future__ import annotations

import ctypes
import faulthandler
import functools
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from fuzzer.core.files import disk_full
from fuzzer.core.testcase import TestCase, values_digest
from oracles.base import FULL, PHASES, BackendInfo, Outcome, Restriction, Unsupported
from oracles.registry import load_backend

LOG_TAIL_BYTES = 4000
LOG_LIMIT_BYTES = 2**20  # a child's log is emptied before a request once it holds more than this
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): a signal the kernel sends when the parent dies
FAULTHANDLER_REPORT = "Fatal Python error:"

Setup = Callable[[], tuple[Any, Any]]  # run once in the child: (its state, what it reports when ready)


class WorkerStartError(RuntimeError):
    """A worker could not start (import error, setup failure, start-up timeout)."""


@dataclass
class Raised:
    """An error a child hands back instead of dying of it: a full disk, which a fresh child would
    meet again; `collect` raises it in the parent, so the campaign stops until there is space."""

    error: OSError


@dataclass
class Reply:
    """What came back for one request: its value, or how the child failed to give one."""

    status: str  # "ok", "timeout" or "died"
    value: Any = None
    stage: str | None = None  # the stage the child had marked when it stopped answering
    exit: str | None = None  # "SIGSEGV", "exit 1", ...
    message: str = ""
    log: str = ""
    seconds: float = 0.0  # from submission to reply
    work_seconds: float = 0.0  # of those, inside the call; the rest went to pickling, the pipe and waiting

    @property
    def ipc_seconds(self) -> float:
        """What crossing the process border cost this request (the whole of it for a failed one)."""
        return self.seconds - self.work_seconds


class ChildWorker:
    """One long-lived spawned child serving calls `call(state, stage, *args)` on the state its setup
    made; replaced by a fresh one whenever it dies or overruns a request's limit."""

    def __init__(
        self,
        setup: Setup,
        label: str,
        stages: tuple[str, ...],
        memory_mb: int | None,
        startup_timeout: float,
        daemon: bool = True,  # a child that starts children of its own cannot be a daemon
    ) -> None:
        self.setup = setup
        self.daemon = daemon
        self.label = label
        self.stages = stages
        self.memory_mb = memory_mb
        self.startup_timeout = startup_timeout
        self.ready_payload: Any = None
        self.restarts = 0
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._stage: Any = None
        self._log: Path | None = None
        self._log_start = 0  # where the running request's output begins in the child's log
        self._submitted_at: float | None = None

    @property
    def connection(self) -> multiprocessing.connection.Connection | None:
        """The pipe to wait on (multiprocessing.connection.wait) while several children work."""
        return self._conn

    @property
    def busy(self) -> bool:
        return self._submitted_at is not None

    def overdue(self, limit: float) -> bool:
        """Whether the request in flight has run past `limit` seconds."""
        return self._submitted_at is not None and time.monotonic() - self._submitted_at > limit

    def start(self) -> Any:
        """Start the child and wait for its setup (imports, warm-up) to finish."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the child without waiting, so several children warm up at once."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._stage = context.Value("i", 0)
        handle, log_name = tempfile.mkstemp(prefix="dlfuzz-worker-", suffix=".log")
        os.close(handle)
        if self._log is not None:
            self._log.unlink(missing_ok=True)
        self._log = Path(log_name)
        self._process = context.Process(
            target=_serve,
            args=(self.setup, child, self._stage, self.memory_mb, log_name, os.getpid()),
            daemon=self.daemon,
        )
        self._process.start()
        child.close()
        self._conn = parent

    def wait_ready(self) -> Any:
        assert self._conn is not None
        if not self._conn.poll(self.startup_timeout):
            self._kill()
            raise WorkerStartError(f"{self.label}: worker did not start in {self.startup_timeout:.0f}s")
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            tail = self._log_tail().strip().splitlines()
            self._kill()
            raise WorkerStartError(f"{self.label}: worker died while starting: {tail[-1] if tail else ''}") from None
        if kind != "ready":
            self._kill()
            raise WorkerStartError(f"{self.label}: {payload}")
        self.ready_payload = payload
        return payload

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        """Send a request; `collect` waits for its reply, so several children can work at once."""
        if self._process is None or not self._process.is_alive():
            self.restarts += self._process is not None
            self.start()
        assert self._conn is not None
        self._stage.value = 0
        self._log_start = self._log.stat().st_size if self._log is not None and self._log.exists() else 0
        if self._log_start > LOG_LIMIT_BYTES:  # the child is idle and appends: it goes on at the start
            os.truncate(self._log, 0)
            self._log_start = 0
        self._conn.send((call, args))
        self._submitted_at = time.monotonic()

    def collect(self, timeout: float) -> Reply:
        """The reply to the request in flight, or how the child failed within `timeout` seconds of its
        submission; a child that failed is gone, and the next request starts a fresh one. A full disk
        the child met is raised here."""
        assert self._conn is not None and self._process is not None and self._submitted_at is not None
        submitted, self._submitted_at = self._submitted_at, None
        ready = self._conn.poll(max(timeout - (time.monotonic() - submitted), 0))
        elapsed = time.monotonic() - submitted
        stage = self.stage_name()
        if ready:
            try:
                value, work_seconds = self._conn.recv()
            except (EOFError, ConnectionResetError):
                pass  # the child died after the request arrived; report below
            else:
                if isinstance(value, Raised):
                    raise value.error
                return Reply("ok", value, seconds=elapsed, work_seconds=work_seconds)
        if self._process.is_alive() and not ready:
            self._kill()
            return Reply("timeout", stage=stage, message=f"no result after {timeout:.0f}s", seconds=elapsed)
        self._process.join(5)
        code = self._process.exitcode
        log = self.request_log()
        self._kill()
        return Reply(
            "died",
            stage=stage,
            exit=exit_name(code),
            message=death_message(code, log),
            log=_without_module_list(log)[-LOG_TAIL_BYTES:],
            seconds=elapsed,
        )

    def stage_name(self) -> str | None:
        return _stage_label(self.stages, self._stage.value if self._stage is not None else 0)

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
        self._submitted_at = None

    def _log_tail(self) -> str:
        if self._log is None or not self._log.exists():
            return ""
        data = self._log.read_bytes()[-LOG_TAIL_BYTES:]
        return data.decode(errors="replace")

    def request_log(self) -> str:
        """What the child printed since the running request arrived (not what earlier ones printed)."""
        if self._log is None or not self._log.exists():
            return ""
        with open(self._log, "rb") as handle:
            handle.seek(self._log_start)
            return handle.read().decode(errors="replace")


class BackendWorker(ChildWorker):
    """One backend in one child process."""

    def __init__(
        self,
        ref: str,
        timeout: float = 60.0,
        memory_mb: int | None = 8192,
        startup_timeout: float = 300.0,
    ) -> None:
        super().__init__(functools.partial(_load, ref), f"backend {ref}", PHASES, memory_mb, startup_timeout)
        self.ref = ref
        self.timeout = timeout

    @property
    def info(self) -> BackendInfo | None:
        return self.ready_payload

    @property
    def name(self) -> str:
        return self.info.name if self.info else self.ref

    def submit_case(self, case: TestCase, restriction: Restriction = FULL) -> None:
        """Send a case (to run with the restriction); `collect_outcome` waits for its Outcome."""
        self.submit(_execute, case, restriction)

    def collect_outcome(self) -> Outcome:
        reply = self.collect(self.timeout * (self.info.runs_per_case if self.info else 1))
        if reply.status == "ok":
            return reply.value
        if reply.status == "timeout":
            return Outcome("timeout", phase=reply.stage, message=reply.message, seconds=reply.seconds)
        return Outcome(
            "died",
            phase=reply.stage,
            exc_type=reply.exit,
            message=reply.message,
            seconds=reply.seconds,
            details=reply.log,
        )

    def run(self, case: TestCase, restriction: Restriction = FULL) -> Outcome:
        self.submit_case(case, restriction)
        return self.collect_outcome()


def _stage_label(stages: tuple[str, ...], code: int) -> str | None:
    """A stage marked in shared memory as its 1-based index (0: none yet)."""
    return stages[code - 1] if 0 < code <= len(stages) else None


def exit_name(code: int | None) -> str:
    """A child's exit as people name it: the signal that ended it, or its exit status."""
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def death_message(code: int | None, log: str) -> str:
    """The line of the request's log that best says why the child died. faulthandler's report names
    only the signal, and its module list runs longer in a warm child: it is not read."""
    before_report = log.split(FAULTHANDLER_REPORT, 1)[0]
    for line in reversed(before_report.splitlines()):
        if any(word in line for word in ("Error", "error", "Check failed", "Assertion", "Fatal", "terminate")):
            return line.strip()[:500]
    return f"worker process ended ({exit_name(code)})"


def _without_module_list(log: str) -> str:
    """The log without faulthandler's list of loaded extension modules (hundreds in a warm child)."""
    return "\n".join(line for line in log.splitlines() if not line.startswith("Extension modules:"))


def _serve(setup: Setup, conn: Connection, stage: Any, memory_mb: int | None, log: str, parent: int) -> None:
    """The child's loop: set up once, then serve calls until told to stop or the parent is gone."""
    _die_with_parent(parent)
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
        state, payload = setup()
    except BaseException as error:
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    conn.send(("ready", payload))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        call, args = request
        clock = time.monotonic()
        try:
            reply = call(state, stage, *args)
        except OSError as error:
            if not disk_full(error):
                raise
            reply = Raised(error)
        conn.send((reply, time.monotonic() - clock))


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this child when its parent dies, so a killed campaign leaves neither
    lanes nor backend workers behind (each dies with the one that started it). Linux ties this to the
    thread that started the child, so a worker that replay's threads restart ends with its thread,
    once its cases are done. A parent that died before this took effect is noticed here."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _load(ref: str) -> tuple[Any, BackendInfo]:
    backend_class, source = load_backend(ref)
    backend = backend_class()
    backend.setup()
    identity = (backend.name, backend.frontend, backend.reference, backend.version(), source)
    return backend, BackendInfo(
        *identity,
        batchable=backend.batchable,
        batch_size=backend.batch_size,
        runs_per_case=backend.runs_per_case,
        readouts=backend.readouts,
        compositions=backend.compositions,
    )


def _execute(backend: Any, phase: Any, case: TestCase, restriction: Restriction) -> Outcome:
    backend.restriction = restriction
    try:
        outcome = _outcome(backend, case, phase)
    finally:
        backend.restriction = FULL
    outcome.stages, outcome.switches = tuple(backend.stages(case)), tuple(backend.switches(case))
    outcome.drawn = backend.drawn(case)
    return outcome


@dataclass
class _Kept:
    """The graph a worker's backend compiled last, kept for a next case of the same compile key."""

    key: str
    inputs: str  # the digest of the values it ran on: the same case again (a re-run) compiles afresh
    compiled: Any
    fired: dict[str, int]


_KEPT: dict[str, _Kept] = {}  # by backend name: what this child compiled last


def _outcome(backend: Any, case: TestCase, phase: Any) -> Outcome:
    start = time.monotonic()
    reason = backend.unsupported(case)
    if reason:
        return Outcome("unsupported", message=reason)
    key = backend.compile_key(case) if backend.restriction == FULL else None
    inputs = values_digest(case.inputs) if key is not None else ""  # only a keyed compile is kept
    kept = _KEPT.pop(backend.name, None)
    if kept is not None and (kept.key != key or kept.inputs == inputs):
        backend.teardown()
        kept = None
    fired: dict[str, int] = {}
    timed: dict[str, float] = {}
    try:
        if kept is None:
            phase.value = 1
            converted = _timed(timed, "convert", backend.convert, case)
            phase.value = 2
            compiled = _timed(timed, "compile", backend.compile, converted, case)
            fired = _fired_optimizations(backend, compiled, case)
        else:
            compiled, fired = kept.compiled, kept.fired
        phase.value = 3
        outputs = _timed(timed, "run", backend.run, compiled, case)
        baseline = backend.baseline(compiled, case)
        if key is not None:
            _KEPT[backend.name] = _Kept(key, inputs, compiled, fired)
        return Outcome(
            "ok",
            outputs=outputs,
            seconds=time.monotonic() - start,
            optimizations=fired,
            baseline=baseline,
            phase_seconds=timed,
            reused=kept is not None,
        )
    except Unsupported as error:
        return Outcome("unsupported", phase=_stage_label(PHASES, phase.value), message=_headline(str(error)))
    except Exception as error:
        if disk_full(error):  # the machine's, not the compiler's: the campaign stops on it
            raise
        text = str(error).strip()
        return Outcome(
            "error",
            phase=_stage_label(PHASES, phase.value),
            exc_type=type(error).__name__,
            message=_headline(text),
            seconds=time.monotonic() - start,
            details=traceback.format_exc()[-20000:],
            optimizations=fired,
            phase_seconds=timed,
        )
    finally:
        if backend.name not in _KEPT:
            backend.teardown()


def _timed(timed: dict[str, float], phase: str, call: Callable[..., Any], *args: Any) -> Any:
    """Run one phase of a backend and note its seconds, whether it returns or raises, so a benchmark
    can tell a compiler's conversion, compilation and execution apart."""
    clock = time.monotonic()
    try:
        return call(*args)
    finally:
        timed[phase] = time.monotonic() - clock


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
