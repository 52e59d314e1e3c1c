import pytest
import torch

from snnlstm.conversion.calibration import PreactivationHistogram, fit_thresholds
from snnlstm.nn.lstm import SpikingLSTM


def test_histogram_counts_every_value() -> None:
    hist = PreactivationHistogram(num_layers=2, bins=64, value_range=4.0)
    z, c = torch.randn(10, 4 * 3), torch.randn(10, 3)
    hist.update(1, z, c)
    counts = hist.compute()
    assert counts[0].sum() == 0
    assert counts[1].sum(-1).tolist() == [30.0] * 5  # 10 samples x 3 units per row


@pytest.mark.parametrize("scale", [1.0, 3.0], ids=["narrow", "wide"])
def test_fit_thresholds_tracks_the_distribution(scale: float) -> None:
    hist = PreactivationHistogram(num_layers=1, bins=512, value_range=16.0)
    torch.manual_seed(0)
    for _ in range(5):
        hist.update(0, torch.randn(256, 16) * scale, torch.randn(256, 4) * scale)
    fitted = fit_thresholds(hist.compute()[0], hist.centers())
    assert set(fitted) == {"i", "f", "o", "g+", "g-", "tanh_c+", "tanh_c-"}
    assert 2.0 < fitted["i"] < 8.0  # a hard sigmoid of width ~4-6 fits sigmoid best
    assert fitted["g+"] > 0 > fitted["g-"]
    assert fitted["g+"] == pytest.approx(-fitted["g-"], rel=0.25)  # symmetric input, symmetric fit


def test_wider_distribution_gives_wider_fit() -> None:
    fits = []
    for scale in (0.5, 4.0):
        hist = PreactivationHistogram(num_layers=1, bins=512, value_range=16.0)
        torch.manual_seed(0)
        hist.update(0, torch.randn(2048, 16) * scale, torch.randn(2048, 4) * scale)
        fits.append(fit_thresholds(hist.compute()[0], hist.centers()))
    assert fits[1]["g+"] > fits[0]["g+"]


def test_empty_histogram_keeps_defaults() -> None:
    hist = PreactivationHistogram(num_layers=1)
    fitted = fit_thresholds(hist.compute()[0], hist.centers())
    assert fitted["i"] == 4.0 and fitted["g+"] == 1.0 and fitted["g-"] == -1.0


def test_layer_observer_sees_ann_forward() -> None:
    layer = SpikingLSTM(3, 4, num_layers=2, activation="standard")
    layer.calibration_observer = PreactivationHistogram(num_layers=2)
    layer(torch.randn(5, 7, 3))
    assert layer.calibration_observer.compute().sum(-1).tolist() == [[5 * 7 * 4.0] * 5] * 2


def test_set_thresholds_validates_layer_count() -> None:
    with pytest.raises(ValueError, match="2 layers"):
        SpikingLSTM(3, 4, num_layers=2).set_thresholds([{}])


def test_bad_histogram_arguments() -> None:
    with pytest.raises(ValueError, match="bins"):
        PreactivationHistogram(num_layers=1, bins=2)
