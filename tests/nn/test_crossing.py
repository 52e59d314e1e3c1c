"""Threshold-crossing encoder: spike counts on hand-made ramps, cue steps, errors."""

from __future__ import annotations

import pytest
import torch

from snnlstm.nn.crossing import ThresholdCrossingEncoder


def test_ramp_up_then_down_crosses_every_level_once_each_way() -> None:
    enc = ThresholdCrossingEncoder(levels=4, low=0.0, high=1.0)  # thresholds 0.2, 0.4, 0.6, 0.8
    ramp = torch.cat([torch.linspace(0, 1, 11), torch.linspace(1, 0, 11)[1:]]).view(1, -1, 1)
    spikes = enc(ramp)
    assert spikes.shape == (1, 21, 8)
    up, down = spikes[0, :, :4], spikes[0, :, 4:]
    assert up.sum(0).tolist() == [1, 1, 1, 1] and down.sum(0).tolist() == [1, 1, 1, 1]
    assert up[:11].sum() == 4 and down[:11].sum() == 0  # ups on the way up, downs on the way down
    # level 0.4 is crossed upwards at x = 0.4 (step 4) and downwards from 0.4 to 0.3 (step 17)
    assert up[:, 1].nonzero().item() == 4 and down[:, 1].nonzero().item() == 17


def test_a_jump_crosses_several_levels_in_one_step() -> None:
    enc = ThresholdCrossingEncoder(levels=4)
    spikes = enc(torch.tensor([[[0.0], [0.9], [0.3]]]))
    assert spikes[0, 1, :4].tolist() == [1, 1, 1, 1] and spikes[0, 2, 4:].tolist() == [0, 1, 1, 1]


def test_each_feature_has_its_own_neurons_and_cue_steps_follow() -> None:
    enc = ThresholdCrossingEncoder(levels=3, cue_steps=5, cue_neurons=2)
    x = torch.zeros(2, 7, 2)
    x[:, 3, 1] = 1.0
    spikes = enc(x)
    assert spikes.shape == (2, 12, enc.output_size(2)) == (2, enc.output_steps(7), 14)
    assert spikes[:, 3, 6:9].sum() == 6 and spikes[:, 3, :6].sum() == 0  # feature 1's up neurons
    assert spikes[:, 7:, -2:].eq(1).all() and spikes[:, 7:, :-2].eq(0).all()  # cue: only the cue neurons
    assert spikes[:, :7, -2:].eq(0).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"levels": 0}, "levels must be an integer >= 1"), ({"cue_steps": -1}, "cue_steps"), ({"low": 1.0, "high": 0.0}, "high must be > low")],
    ids=["levels", "cue_steps", "range"],
)
def test_bad_settings_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThresholdCrossingEncoder(**kwargs)


def test_bad_inputs_are_rejected() -> None:
    enc = ThresholdCrossingEncoder(levels=2)
    with pytest.raises(ValueError, match=r"\[batch, steps, features\]"):
        enc(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        enc(torch.full((1, 2, 1), float("nan")))
