"""Lanes as Ray actors (`dlfuzz fuzz --ray`): each actor runs the same case pipeline a lane's child
process runs, with its own backend workers, on whichever node of the cluster Ray places it; the
campaign loop on the driver draws, files and records in case order as with local lanes.

An actor that is lost (its process killed, its node gone) is restarted by Ray, which sends it the
request it had in flight once more, so the case runs again elsewhere instead of being skipped; a case
that loses its actor twice is skipped as a local lane's crash is. Actors never write the campaign
folder: a bug they file comes back in the reply (the folder's files, written and its repro run on the
actor's node) and the driver writes it, so the folder needs to be on the driver's machine only.
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

    def serve(self, call: Any, *args: Any) -> tuple[Any, float, int]:
        """The call's value, the seconds it worked, and which process answered (a new one: restarted)."""
        clock = time.monotonic()
        value = call(self.pipeline, Marker(), *args)
        return value, time.monotonic() - clock, os.getpid()


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
        ray.shutdown()  # a failed init leaves threads behind that would keep this process from exiting
        raise CampaignError(f"Ray cluster {address}: {error}") from None


class RayLane:
    """One lane as a Ray actor, with the interface of the campaign's other lanes."""

    def __init__(self, options: CampaignOptions, pipeline_class: type[CasePipeline] = CasePipeline) -> None:
        self.options, self.pipeline_class = options, pipeline_class
        self.restarts = 0
        self.actor: Any = None
        self._pid: int | None = None  # the actor's process, as its last answer named it
        self._ref: Any = None
        self._submitted_at: float | None = None

    @property
    def busy(self) -> bool:
        return self._submitted_at is not None

    def launch(self) -> None:
        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=1)(PipelineActor)
        self.actor = remote.remote(self.options, self.pipeline_class)

    def wait_ready(self) -> dict[str, BackendInfo]:
        return ray.get(self.actor.ready.remote(), timeout=STARTUP_SECONDS)

    def submit(self, call: Any, *args: Any) -> None:
        self._ref = self.actor.serve.remote(call, *args)
        self._submitted_at = time.monotonic()

    def replied(self) -> bool:
        done, _ = ray.wait([self._ref], timeout=0)
        return bool(done)

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
            value, work_seconds, pid = ray.get(self._ref, timeout=max(timeout - (time.monotonic() - submitted), 0))
        except GetTimeoutError:
            ray.kill(self.actor, no_restart=False)
            return Reply("timeout", message=f"no result after {timeout:.0f}s", seconds=_since(submitted))
        except RayError as error:  # the actor lost twice, or our own stage raised in it
            message = str(error).strip().splitlines()
            exit = "actor lost" if isinstance(error, RayActorError) else type(error).__name__
            return Reply("died", exit=exit, message=message[0] if message else "", seconds=_since(submitted))
        self.restarts += self._pid is not None and pid != self._pid
        self._pid = pid
        return Reply("ok", value, seconds=_since(submitted), work_seconds=work_seconds)

    def close(self) -> None:
        if self.actor is not None:
            ray.kill(self.actor, no_restart=True)
            self.actor = None


def _since(clock: float) -> float:
    return time.monotonic() - clock
