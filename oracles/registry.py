"""Find a backend class by built-in name, `module:Class`, or the `dlfuzz.backends` entry points."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from oracles.base import Backend

BUILTIN = {
    "eager": "oracles.backends.pytorch:Eager",
    "inductor": "oracles.backends.pytorch:Inductor",
    "ort": "oracles.backends.onnx_runtime:OrtOptimized",
    "ort-noopt": "oracles.backends.onnx_runtime:OrtNoOpt",
    "tvm": "oracles.backends.tvm_relax:TvmRelax",
    "ort-basic": "oracles.backends.onnx_runtime:OrtBasic",
    "ort-extended": "oracles.backends.onnx_runtime:OrtExtended",
    "tvm-passes": "oracles.backends.tvm_relax:TvmDrawnPasses",
    "inductor-dynamic": "oracles.backends.inductor_configs:InductorDynamic",
    "inductor-freezing": "oracles.backends.inductor_configs:InductorFreezing",
    "inductor-cpp-wrapper": "oracles.backends.inductor_configs:InductorCppWrapper",
    "inductor-max-autotune": "oracles.backends.inductor_configs:InductorMaxAutotune",
    "tvm-meta": "oracles.backends.metamorphic:TvmMeta",
    "ort-meta": "oracles.backends.metamorphic:OrtMeta",
    "inductor-meta": "oracles.backends.metamorphic:InductorMeta",
    "inductor-grad": "oracles.backends.inductor_configs:InductorGrad",
    "inductor-aot": "oracles.backends.inductor_configs:InductorAot",
}
REFERENCES = ("eager", "ort-noopt")
SYSTEMS = ("ort", "tvm", "inductor")
# Each system in another configuration, with the plain system it varies: a finding of a variant is
# new only where the plain system does not show it, and its report goes to that system's project.
VARIANTS = {
    "ort-basic": "ort",
    "ort-extended": "ort",
    "tvm-passes": "tvm",
    "inductor-dynamic": "inductor",
    "inductor-freezing": "inductor",
    "inductor-cpp-wrapper": "inductor",
    "inductor-max-autotune": "inductor",
    "tvm-meta": "tvm",
    "ort-meta": "ort",
    "inductor-meta": "inductor",
    "inductor-grad": "inductor",
    "inductor-aot": "inductor",
}
# Metamorphic oracles, with the backend each runs on the original and on an equivalent graph.
METAMORPHIC = {"tvm-meta": "tvm", "ort-meta": "ort", "inductor-meta": "inductor"}
ENTRY_POINT_GROUP = "dlfuzz.backends"


def plain_system(name: str) -> str:
    """The system a backend name is a configuration of (itself for a plain system)."""
    return VARIANTS.get(name, name)


class BackendNotFound(ValueError):
    """A backend reference that names nothing importable; the message says what was tried."""


def resolve(ref: str) -> str:
    """The `module:Class` path a reference stands for."""
    if ref in BUILTIN:
        return BUILTIN[ref]
    if ":" in ref:
        return ref
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == ref:
            return entry.value
    known = ", ".join([*BUILTIN, *(e.name for e in entry_points(group=ENTRY_POINT_GROUP))])
    raise BackendNotFound(f"unknown backend {ref!r}; use one of {known} or module:Class")


def load_backend(ref: str) -> tuple[type[Backend], str]:
    """Import the backend class; returns it with the `module:Class` it came from."""
    path = resolve(ref)
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendNotFound(f"backend {ref!r}: cannot import {module_name} ({error})") from None
    backend = getattr(module, class_name, None)
    if not (isinstance(backend, type) and issubclass(backend, Backend)):
        raise BackendNotFound(f"backend {ref!r}: {path} is not a dlfuzz Backend subclass")
    return backend, path
