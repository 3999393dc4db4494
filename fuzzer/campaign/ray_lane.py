"""Lanes as Ray actors (`dlfuzz fuzz --ray`): each actor runs the same case pipeline a lane's child
process runs, with its own backend workers, on whichever node of the cluster Ray places it; the
campaign loop on the driver draws, files and records in case order as with local lanes.

An actor that is lost (its process killed, its node gone) is restarted by Ray, and the request it had
in flight is sent once more, so the case runs again elsewhere instead of being skipped; a case that
loses its actor twice is skipped as a local lane's crash is. The campaign folder is written by the
actors too (invalid cases, bug folders): on a cluster it must be on storage every node mounts at the
same path.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from fuzzer.campaign.pipeline import STARTUP_SECONDS, CasePipeline, Marker, start_pipeline
from fuzzer.campaign.state import CampaignError, CampaignOptions
from oracles.base import BackendInfo
from oracles.worker import Reply

CONNECT_SECONDS = 10.0  # Ray itself retries an unreachable address for minutes


class PipelineActor:
    """A case pipeline inside a Ray actor; every request reports the seconds it worked."""

    def __init__(self, options: CampaignOptions, pipeline_class: type[CasePipeline]) -> None:
        self.pipeline, self.infos = start_pipeline(options, pipeline_class)

    def ready(self) -> dict[str, BackendInfo]:
        return self.infos

    def pid(self) -> int:
        return os.getpid()

    def serve(self, call: Any, *args: Any) -> tuple[Any, float]:
        clock = time.monotonic()
        value = call(self.pipeline, Marker(), *args)
        return value, time.monotonic() - clock


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ('auto': the one this machine runs); one that cannot be
    reached is a CampaignError, found in seconds."""
    if ray.is_initialized():
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address != "auto":
        try:
            socket.create_connection((host, int(port)), CONNECT_SECONDS).close()
        except (OSError, ValueError) as error:
            raise CampaignError(f"Ray cluster {address} cannot be reached ({error})") from None
    try:
        ray.init(address=address, log_to_driver=False)
    except ConnectionError as error:
        raise CampaignError(f"Ray cluster {address}: {error}") from None


class RayLane:
    """One lane as a Ray actor, with the interface of the campaign's other lanes."""

    def __init__(self, options: CampaignOptions, pipeline_class: type[CasePipeline] = CasePipeline) -> None:
        self.options, self.pipeline_class = options, pipeline_class
        self.restarts = 0
        self.actor: Any = None
        self._ref: Any = None
        self._request: tuple[Any, ...] = ()
        self._resent = False
        self._submitted_at: float | None = None

    @property
    def busy(self) -> bool:
        return self._submitted_at is not None

    def launch(self) -> None:
        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(PipelineActor)
        self.actor = remote.remote(self.options, self.pipeline_class)

    def wait_ready(self) -> dict[str, BackendInfo]:
        return ray.get(self.actor.ready.remote(), timeout=STARTUP_SECONDS)

    def submit(self, call: Any, *args: Any) -> None:
        self._request, self._resent = (call, *args), False
        self._ref = self.actor.serve.remote(call, *args)
        self._submitted_at = time.monotonic()

    def replied(self) -> bool:
        """Whether the request has its answer; a request whose actor was lost is sent once more (to
        the actor Ray restarts) and is not answered yet."""
        done, _ = ray.wait([self._ref], timeout=0)
        if not done or self._resent or not _lost(self._ref):
            return bool(done)
        self.restarts += 1
        self._resent = True
        self._ref = self.actor.serve.remote(*self._request)
        return False

    def overdue(self, limit: float) -> bool:
        return self._submitted_at is not None and time.monotonic() - self._submitted_at > limit

    @staticmethod
    def wait_any(lanes: list[RayLane], timeout: float) -> None:
        """Block until one of the busy `lanes` has an answer (or lost its actor), or `timeout` passes."""
        ray.wait([lane._ref for lane in lanes], num_returns=1, timeout=timeout)

    def collect(self, timeout: float) -> Reply:
        assert self._submitted_at is not None
        submitted, self._submitted_at = self._submitted_at, None
        try:
            value, work_seconds = ray.get(self._ref, timeout=max(timeout - (time.monotonic() - submitted), 0))
        except GetTimeoutError:
            ray.kill(self.actor, no_restart=False)
            return Reply("timeout", message=f"no result after {timeout:.0f}s", seconds=_since(submitted))
        except RayError as error:  # the actor lost twice, or our own stage raised in it
            message = str(error).strip().splitlines()
            exit = "actor lost" if isinstance(error, RayActorError) else type(error).__name__
            return Reply("died", exit=exit, message=message[0] if message else "", seconds=_since(submitted))
        return Reply("ok", value, seconds=_since(submitted), work_seconds=work_seconds)

    def close(self) -> None:
        if self.actor is not None:
            ray.kill(self.actor, no_restart=True)
            self.actor = None


def _lost(ref: Any) -> bool:
    """Whether a finished request ended with its actor gone rather than with an answer."""
    try:
        ray.get(ref, timeout=0)
    except RayActorError:
        return True
    return False


def _since(clock: float) -> float:
    return time.monotonic() - clock
