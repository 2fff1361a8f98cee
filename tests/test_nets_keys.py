"""The networks' state_dicts equal the official key listings (specs/keys/) exactly: names, order and shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from backend.nets.bev import BEVv1, cam3d_anchors
from backend.nets.hrnet import HRNetW32
from backend.nets.romp import ROMPv1

KEYS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "keys"


def listing(name: str) -> list[tuple[str, tuple[int, ...]]]:
    if not (KEYS / name).is_file():
        pytest.fail(f"key listing missing: {KEYS / name}")
    rows = []
    for line in (KEYS / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


def keys_of(module: torch.nn.Module, prefix: str = "") -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items() if k.startswith(prefix)]


def test_romp_hrnet32_matches_listing() -> None:
    expected = listing("romp_v1_hrnet32_ROMP.pkl.txt")
    net = ROMPv1("hrnet32")
    assert keys_of(net) == expected and len(expected) == 1851
    assert sum(p.numel() for p in net.parameters()) == 29048274


def test_romp_resnet50_matches_listing() -> None:
    net = ROMPv1("resnet50")
    assert keys_of(net, "backbone.") == listing("romp_v1_resnet50_backbone.txt")
    hrnet_heads = [(k, s) for k, s in listing("romp_v1_hrnet32_ROMP.pkl.txt") if k.startswith("final_layers")]
    heads = {k: ((64, 66, 3, 3) if k.endswith(".0.0.weight") else s) for k, s in hrnet_heads}
    assert dict(keys_of(net, "final_layers")) == heads


def test_bev_matches_listing_with_coordmap_buffer() -> None:
    net = BEVv1()
    assert keys_of(net) == listing("bev_v1_BEV.pth.txt")
    assert sum(p.numel() for p in net.parameters()) == 35878223
    anchors = cam3d_anchors()
    assert anchors.shape == (64,) and anchors[3] == pytest.approx(1 / 0.57735, rel=1e-4)  # end of the 1 m level
    z, y, x = net.coordmap_3d[0, 5, 7, 9]
    assert (z.item(), y.item(), x.item()) == pytest.approx((anchors[5], 7 / 64 - 1, 9 / 64 - 1))


def test_hrnet_shapes_single_and_multi_scale() -> None:
    x = torch.zeros(1, 3, 64, 64)
    with torch.inference_mode():
        single = HRNetW32().eval()(x)
        multi = HRNetW32(multi_scale_output=True).eval()(x)
    assert [tuple(t.shape) for t in single] == [(1, 32, 16, 16)]
    assert [tuple(t.shape) for t in multi] == [(1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2)]
