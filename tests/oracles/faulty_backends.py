"""Backends that misbehave on purpose, to prove a campaign survives them."""

from __future__ import annotations

import ctypes
import time
from typing import Any

import numpy as np

from fuzzer.testcase import TestCase
from oracles.onnx_runtime import OnnxBackend


class Faulty(OnnxBackend):
    def version(self) -> str:
        return "0"

    def compile(self, converted: Any, case: TestCase) -> Any:
        self.misbehave()
        return converted

    def run(self, compiled: Any, case: TestCase) -> dict[str, np.ndarray]:
        return {}

    def misbehave(self) -> None:
        raise NotImplementedError


class Segfault(Faulty):
    name = "segfault"

    def misbehave(self) -> None:
        ctypes.string_at(0)


class Hang(Faulty):
    name = "hang"

    def misbehave(self) -> None:
        time.sleep(3600)


class Raises(Faulty):
    name = "raises"

    def misbehave(self) -> None:
        raise RuntimeError("planted failure at node n4 (value 17)")


class LacksFloat64(Faulty):
    """Declares float64 unsupported and runs everything else (by running nothing)."""

    name = "lacks-float64"

    def misbehave(self) -> None:
        pass

    def unsupported(self, case: TestCase) -> str | None:
        has_float64 = any(t.dtype == "float64" for t in case.graph.types.values())
        return "no float64 kernels" if has_float64 else None
