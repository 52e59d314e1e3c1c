"""Tests of :class:`snnlstm.measure.metrics.SpikeStatsMetric`."""

from __future__ import annotations

import warnings

import pytest
import torch

from snnlstm.measure.energy import energy_ratio
from snnlstm.nn.lstm import SpikingLSTM
from snnlstm.measure.metrics import POPULATIONS, SpikeStatsMetric, _spike_stats_update, spike_stats
from snnlstm.measure.stats import GATE_NAMES, SpikeStats


def _stats(mode: str = "snn", layers: int = 2, seed: int = 0, **kwargs) -> SpikeStats:
    torch.manual_seed(seed)
    lstm = SpikingLSTM(4, 6, num_layers=layers, mode=mode, timesteps=2, **kwargs)
    return lstm(torch.randn(3, 5, 4)).stats


def test_rates_match_hand_counts() -> None:
    stats = _stats()
    metric = SpikeStatsMetric(2)
    metric.update(stats)
    out = metric.compute()
    spikes = neuron_steps = 0.0
    for k, layer in enumerate(stats):
        for gate, count in layer.spikes.items():
            assert out[f"l{k}.{gate}/rate"].item() == pytest.approx(count.item() / layer.neuron_steps)
            if gate != "h":
                spikes += count.item()
                neuron_steps += layer.neuron_steps
    assert out["rate"].item() == pytest.approx(spikes / neuron_steps)
    assert out["count/spikes"].item() == spikes and out["count/neuron_steps"].item() == neuron_steps


def test_absent_gates_are_missing_not_zero() -> None:
    stats = _stats(spiking_gates=("f", "o", "tanh_c"))  # i and g non-spiking
    metric = SpikeStatsMetric(2)
    metric.update(stats)
    out = metric.compute()
    for k in range(2):
        assert f"l{k}.i/rate" not in out and f"l{k}.g/rate" not in out
        assert f"l{k}.f/rate" in out and f"l{k}.h/rate" in out
    upd = _spike_stats_update(stats)
    assert upd.present[:, POPULATIONS.index("i")].sum() == 0
    assert upd.present[:, POPULATIONS.index("f")].tolist() == [1.0, 1.0]


def test_sums_across_two_updates() -> None:
    a, b = _stats(seed=0), _stats(seed=1)
    metric = SpikeStatsMetric(2)
    metric.update(a)
    metric.update(b)
    out = metric.compute()
    f = sum(s[0].spikes["f"].item() for s in (a, b)) / (a[0].neuron_steps + b[0].neuron_steps)
    assert out["l0.f/rate"].item() == pytest.approx(f)
    assert out["count/samples"].item() == 6
    ac = sum(layer.ac.item() for s in (a, b) for layer in s)
    assert out["synops/ac_per_sample"].item() == pytest.approx(ac / 6)
    assert metric.present[0, POPULATIONS.index("f")].item() == 2


def test_sparsity_is_one_minus_rate() -> None:
    metric = SpikeStatsMetric(2)
    metric.update(_stats())
    out = metric.compute()
    rate_keys = [k for k in out if k.endswith("rate") and not k.startswith(("count", "energy"))]
    assert "rate" in rate_keys and "l1.tanh_c/rate" in rate_keys
    for key in rate_keys:
        assert out[key.replace("rate", "sparsity")].item() == pytest.approx(1 - out[key].item())


def test_energy_keys_and_ratio() -> None:
    stats = _stats()
    metric = SpikeStatsMetric(2, e_mac_pj=3.0, e_ac_pj=0.5)
    metric.update(stats)
    out = metric.compute()
    mac = sum(s.mac.item() for s in stats)
    ac = sum(s.ac.item() for s in stats)
    ann_mac = sum(s.ann_mac for s in stats)
    ann_ac = sum(s.ann_ac for s in stats)
    assert out["energy_ratio"].item() == pytest.approx(energy_ratio(ann_mac, ann_ac, mac, ac, 3.0, 0.5))
    assert out["energy/snn_pj_per_sample"].item() == pytest.approx((3.0 * mac + 0.5 * ac) / 3)
    assert out["energy/ann_pj_per_sample"].item() == pytest.approx((3.0 * ann_mac + 0.5 * ann_ac) / 3)
    assert out["ann/mac_per_sample"].item() == pytest.approx(ann_mac / 3)
    assert out["synops/mac_per_sample"].item() == pytest.approx(mac / 3)


def test_ann_mode_only_ops() -> None:
    out = spike_stats(_stats(mode="ann"))
    assert not any("rate" in k or "sparsity" in k for k in out)
    assert out["energy_ratio"].item() == pytest.approx(1.0)
    assert out["synops/mac_per_sample"].item() == pytest.approx(out["ann/mac_per_sample"].item())


def test_no_updates_returns_empty() -> None:
    metric = SpikeStatsMetric(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert metric.compute() == {}


def test_reset() -> None:
    metric = SpikeStatsMetric(2)
    metric.update(_stats())
    metric.compute()
    metric.reset()
    assert metric.samples.item() == 0 and metric.spikes.sum().item() == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_layers": 0}, "num_layers"),
        ({"num_layers": 1, "e_mac_pj": 0.0}, "e_mac_pj"),
        ({"num_layers": 1, "e_ac_pj": -2.0}, "e_ac_pj"),
    ],
    ids=["zero-layers", "zero-mac-energy", "negative-ac-energy"],
)
def test_bad_constructor(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SpikeStatsMetric(**kwargs)


def test_layer_mismatch() -> None:
    with pytest.raises(ValueError, match="expected stats of 3 layer"):
        SpikeStatsMetric(3).update(_stats())
    with pytest.raises(ValueError, match="LayerStats"):
        SpikeStatsMetric(1).update(())


def test_gate_names() -> None:
    assert POPULATIONS == GATE_NAMES + ("lif", "ahp", "h")


def test_model_stats_of_two_stacks_add_their_operations() -> None:
    """A spiking and a non-spiking stack on the same inputs: operations add, the rate is the spiking
    stack's, the ratio is total ANN over total SNN energy."""
    from snnlstm.measure.energy import compute_energy_pj
    from snnlstm.measure.metrics import model_spike_stats, sum_spike_stats

    snn, ann = spike_stats(_stats()), spike_stats(_stats(mode="ann", seed=1))
    totals = sum_spike_stats([snn, {}, ann])  # a stack without updates ({}) is skipped
    out = model_spike_stats(totals, samples=3)
    ac = (snn["synops/ac_per_sample"] + ann["synops/ac_per_sample"]).item()
    mac = (snn["synops/mac_per_sample"] + ann["synops/mac_per_sample"]).item()
    ann_ac = (snn["ann/ac_per_sample"] + ann["ann/ac_per_sample"]).item()
    ann_mac = (snn["ann/mac_per_sample"] + ann["ann/mac_per_sample"]).item()
    assert out["synops/ac_per_sample"].item() == pytest.approx(ac)
    assert out["energy/snn_pj_per_sample"].item() == pytest.approx(compute_energy_pj(mac, ac))
    assert out["energy_ratio"].item() == pytest.approx(compute_energy_pj(ann_mac, ann_ac) / compute_energy_pj(mac, ac))
    assert out["rate"].item() == pytest.approx(snn["rate"].item())  # the ANN stack has no neurons
    assert sum_spike_stats([{}]) is None and "rate" not in model_spike_stats(sum_spike_stats([ann]), 3)
    with pytest.raises(ValueError, match="number of inputs"):
        model_spike_stats(totals, samples=0)
