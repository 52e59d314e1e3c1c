"""Tests of the energy and latency models in :mod:`snnlstm.measure.energy`."""

from __future__ import annotations

import pytest
import torch

from snnlstm.measure.energy import (
    energy_report,
    E_AC_PJ,
    E_MAC_PJ,
    NEUROMORPHIC,
    compute_energy_pj,
    energy_ratio,
    latency_steps,
    neuromorphic_energy,
)


def test_constants() -> None:
    assert (E_MAC_PJ, E_AC_PJ) == (4.6, 0.9)
    assert NEUROMORPHIC == {"truenorth": (0.4, 0.6), "spinnaker": (0.64, 0.36)}


def test_compute_energy() -> None:
    assert compute_energy_pj(10, 100) == pytest.approx(10 * 4.6 + 100 * 0.9)
    assert compute_energy_pj(1, 1, e_mac_pj=2.0, e_ac_pj=0.5) == pytest.approx(2.5)
    t = compute_energy_pj(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 10.0]))
    assert torch.allclose(t, torch.tensor([4.6, 9.2 + 9.0]))


def test_energy_ratio_formula() -> None:
    ann_mac, ann_ac, mac, ac = 1000.0, 50.0, 10.0, 400.0
    expected = (ann_mac * 4.6 + ann_ac * 0.9) / (mac * 4.6 + ac * 0.9)
    assert energy_ratio(ann_mac, ann_ac, mac, ac) == pytest.approx(expected)
    assert energy_ratio(5, 7, 5, 7) == pytest.approx(1.0)
    assert energy_ratio(2, 0, 0, 2, e_mac_pj=3.0, e_ac_pj=1.0) == pytest.approx(3.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"e_mac_pj": 0.0}, "e_mac_pj.*0.0"),
        ({"e_ac_pj": -1.0}, "e_ac_pj.*-1.0"),
        ({"e_mac_pj": float("nan")}, "e_mac_pj"),
    ],
    ids=["zero-mac", "negative-ac", "nan-mac"],
)
def test_bad_energy_costs(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compute_energy_pj(1, 1, **kwargs)
    with pytest.raises(ValueError, match=match):
        energy_ratio(1, 1, 1, 1, **kwargs)


@pytest.mark.parametrize(
    "args, match",
    [((0, 0, 1, 1), "ANN energy"), ((1, 1, 0, 0), "SNN energy"), ((1, 1, -1, 5), "mac.*>= 0")],
    ids=["no-ann-ops", "no-snn-ops", "negative-ops"],
)
def test_energy_ratio_undefined(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        energy_ratio(*args)


@pytest.mark.parametrize("platform", ["truenorth", "spinnaker", "TrueNorth"], ids=["truenorth", "spinnaker", "case"])
def test_neuromorphic_energy(platform: str) -> None:
    e_compute, e_static = NEUROMORPHIC[platform.lower()]
    assert neuromorphic_energy(1000, 30, platform) == pytest.approx(1000 * e_compute + 30 * e_static)


def test_neuromorphic_bad_input() -> None:
    with pytest.raises(ValueError, match="allowed: truenorth, spinnaker"):
        neuromorphic_energy(1, 1, "loihi")
    with pytest.raises(ValueError, match="timesteps"):
        neuromorphic_energy(1, 0, "truenorth")
    with pytest.raises(ValueError, match="flops"):
        neuromorphic_energy(-1, 1, "truenorth")


@pytest.mark.parametrize(
    "scheme, expected",
    [("pipelined", 4 + 10 - 1), ("sequential", 40), ("ann", 10)],
    ids=["pipelined", "sequential", "ann"],
)
def test_latency_steps(scheme: str, expected: int) -> None:
    assert latency_steps(10, 4, scheme) == expected


def test_latency_single_element() -> None:
    assert latency_steps(1, 5, "pipelined") == latency_steps(1, 5, "sequential") == 5


@pytest.mark.parametrize(
    "args, match",
    [
        ((10, 4, "wavefront"), "allowed: pipelined, sequential, ann"),
        ((0, 4, "pipelined"), "seq_len"),
        ((10, 0, "sequential"), "timesteps"),
        ((10, 2.5, "pipelined"), "timesteps"),
        ((True, 2, "ann"), "seq_len"),
    ],
    ids=["unknown-scheme", "zero-seq", "zero-t", "float-t", "bool-seq"],
)
def test_latency_bad_input(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        latency_steps(*args)


def test_energy_report_from_counts() -> None:
    stats = {
        "synops/ac_per_sample": 1000.0,
        "synops/mac_per_sample": 100.0,
        "ann/ac_per_sample": 200.0,
        "ann/mac_per_sample": 2000.0,
    }
    rep = energy_report(stats, timesteps=2, seq_len=28)
    assert rep["snn_pj"] == pytest.approx(100 * 4.6 + 1000 * 0.9)
    assert rep["ann_pj"] == pytest.approx(2000 * 4.6 + 200 * 0.9)
    assert rep["energy_ratio"] == pytest.approx(rep["ann_pj"] / rep["snn_pj"])
    assert (rep["latency_pipelined"], rep["latency_hybrid"], rep["latency_ann"]) == (29, 56, 28)
    # TrueNorth: E = FLOPs * 0.4 + steps * 0.6
    assert rep["truenorth_ratio"] == pytest.approx((2200 * 0.4 + 28 * 0.6) / (1100 * 0.4 + 29 * 0.6))
    assert rep["spinnaker_ratio"] == pytest.approx((2200 * 0.64 + 28 * 0.36) / (1100 * 0.64 + 29 * 0.36))
    custom = energy_report(stats, timesteps=2, seq_len=28, e_mac_pj=3.1, e_ac_pj=0.1)
    assert custom["snn_pj"] == pytest.approx(100 * 3.1 + 1000 * 0.1)


def test_energy_report_needs_counts() -> None:
    with pytest.raises(KeyError, match="missing.*ann/mac_per_sample"):
        energy_report({"synops/ac_per_sample": 1.0, "synops/mac_per_sample": 1.0, "ann/ac_per_sample": 1.0}, 2, 5)
