"""Operator specifications; importing the package registers every family."""

from specs import conv, depth_space, elementwise, linalg, movement, pool, reduce, resize, shape  # noqa: F401
from specs.base import REGISTRY, AbsTensor, OnnxEmitter, OpSpec

__all__ = ["REGISTRY", "AbsTensor", "OnnxEmitter", "OpSpec", "spec"]


def spec(name: str) -> type[OpSpec]:
    """The spec class registered under `name`, with an error naming the unknown op."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown operator {name!r}") from None
