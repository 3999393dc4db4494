from __future__ import annotations

import numpy as np
import pytest

from tests.specs.single_node import run_both

RNG = np.random.default_rng(4)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space_modes_match_onnx_runtime(mode: str) -> None:
    x = RNG.standard_normal((2, 8, 2, 3)).astype(np.float32)
    eager, ort = run_both("DepthToSpace", {"blocksize": 2, "mode": mode}, x)
    assert eager[0].shape == (2, 2, 4, 6) and np.array_equal(eager[0], ort[0])


def test_space_to_depth_inverts_dcr_not_crd() -> None:
    x = RNG.standard_normal((1, 3, 4, 6)).astype(np.float32)
    packed, _ = run_both("SpaceToDepth", {"blocksize": 2}, x)
    dcr, _ = run_both("DepthToSpace", {"blocksize": 2, "mode": "DCR"}, *packed)
    crd, _ = run_both("DepthToSpace", {"blocksize": 2, "mode": "CRD"}, *packed)
    assert np.array_equal(dcr[0], x) and not np.array_equal(crd[0], x)
