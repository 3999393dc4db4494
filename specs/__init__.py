"""Operator specifications; importing the package registers every family."""

from specs import (  # noqa: F401
    activation,
    axis,
    constant,
    conv,
    depth_space,
    division,
    elementwise,
    indexing,
    linalg,
    logical,
    loss,
    movement,
    norm,
    pool,
    reduce,
    resize,
    shape,
)
from specs.base import REGISTRY, AbsTensor, OnnxEmitter, OpSpec

__all__ = ["REGISTRY", "AbsTensor", "OnnxEmitter", "OpSpec", "spec"]


def spec(name: str) -> type[OpSpec]:
    """The spec class registered under `name`, with an error naming the unknown op."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown operator {name!r}") from None
