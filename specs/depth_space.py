"""Blocks of pixels moved between channels and space: DepthToSpace (DCR, CRD) and SpaceToDepth."""

from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F
import z3

from fuzzer.core.dtypes import ALL
from specs.base import AbsTensor, OpSpec, Symbols, register
from specs.conv import floor_div


class BlockRearrange(OpSpec):
    """NCHW in and out; `blocksize` b is the side of the square block that moves."""

    ranks = ((4,),)
    dtypes = tuple((t,) for t in ALL)

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return {"blocksize": rng.choice([1, 2, 2, 3])}

    def onnx_attrs(self) -> dict[str, Any]:
        return dict(self.attrs)


@register
class DepthToSpace(BlockRearrange):
    """CRD is torch's pixel_shuffle; DCR (depth, then column, then row) is a reshape and permute."""

    onnx_op = "DepthToSpace"
    moves_values = True

    @classmethod
    def sample_attrs(cls, rng: random.Random, inputs: list[AbsTensor], syms: Symbols) -> dict[str, Any]:
        return super().sample_attrs(rng, inputs, syms) | {"mode": rng.choice(["DCR", "CRD"])}

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        return [inputs[0].shape[1] % self.attrs["blocksize"] ** 2 == 0]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        n, c, h, w = inputs[0].shape
        b = self.attrs["blocksize"]
        return [AbsTensor([n, floor_div(c, b * b), h * b, w * b], inputs[0].dtype)]

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        b = self.attrs["blocksize"]
        if self.attrs["mode"] == "CRD":
            return F.pixel_shuffle(x, b)
        n, c, h, w = x.shape
        blocks = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
        return blocks.reshape(n, c // (b * b), h * b, w * b)


@register
class SpaceToDepth(BlockRearrange):
    """The inverse of DCR DepthToSpace (torch's pixel_unshuffle orders channels like CRD instead)."""

    onnx_op = "SpaceToDepth"
    moves_values = True

    def requires(self, inputs: list[AbsTensor]) -> list[z3.BoolRef]:
        _, _, h, w = inputs[0].shape
        b = self.attrs["blocksize"]
        return [h % b == 0, w % b == 0]

    def infer(self, inputs: list[AbsTensor]) -> list[AbsTensor]:
        n, c, h, w = inputs[0].shape
        b = self.attrs["blocksize"]
        return [AbsTensor([n, c * b * b, floor_div(h, b), floor_div(w, b)], inputs[0].dtype)]

    def to_torch(self, x: torch.Tensor) -> torch.Tensor:
        b = self.attrs["blocksize"]
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
        return blocks.reshape(n, c * b * b, h // b, w // b)
