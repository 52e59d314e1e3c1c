"""LSTMCompat: a converted nn.LSTM answers exactly like nn.LSTM (shapes, attributes, names, state dicts)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

from snnlstm.measure.stats import stats_sources
from snnlstm.measure.stats import named_stats_sources
from snnlstm.nn.compat import LSTMCompat, NotConvertibleError, check_convertible
from snnlstm.nn.lstm import SpikingLSTM


def _pair(batch_first: bool = False, num_layers: int = 2, bias: bool = True) -> tuple[nn.LSTM, LSTMCompat]:
    torch.manual_seed(0)
    ref = nn.LSTM(3, 5, num_layers=num_layers, batch_first=batch_first, bias=bias)
    return ref, LSTMCompat.from_torch(ref)


@pytest.mark.parametrize("batch_first", [False, True], ids=["time-first", "batch-first"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["zero-state", "hx"])
def test_batched_output_and_state_match_nn_lstm(batch_first: bool, with_hx: bool) -> None:
    ref, compat = _pair(batch_first)
    x = torch.randn(4, 6, 3) if batch_first else torch.randn(6, 4, 3)
    hx = (torch.randn(2, 4, 5), torch.randn(2, 4, 5)) if with_hx else None
    (out_r, (h_r, c_r)), (out_c, (h_c, c_c)) = ref(x, hx), compat(x, hx)
    torch.testing.assert_close(out_c, out_r)
    torch.testing.assert_close(h_c, h_r)
    torch.testing.assert_close(c_c, c_r)


@pytest.mark.parametrize("batch_first", [False, True], ids=["time-first", "batch-first"])
def test_unbatched_input_and_2d_hx_as_nn_lstm_documents(batch_first: bool) -> None:
    ref, compat = _pair(batch_first)
    x, hx = torch.randn(7, 3), (torch.randn(2, 5), torch.randn(2, 5))
    for state in (None, hx):
        out_r, (h_r, c_r) = ref(x, state)
        out_c, (h_c, c_c) = compat(x, state)
        assert out_c.shape == out_r.shape == (7, 5) and h_c.shape == h_r.shape == (2, 5)
        torch.testing.assert_close(out_c, out_r)
        torch.testing.assert_close(c_c, c_r)


def test_hx_dimensions_are_checked_like_nn_lstm() -> None:
    ref, compat = _pair()
    with pytest.raises(RuntimeError, match="unbatched 2-D input, hx and cx should also be 2-D"):
        compat(torch.randn(7, 3), (torch.randn(2, 1, 5), torch.randn(2, 1, 5)))
    with pytest.raises(RuntimeError, match="batched 3-D input, hx and cx should also be 3-D"):
        compat(torch.randn(7, 1, 3), (torch.randn(2, 5), torch.randn(2, 5)))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        compat(torch.randn(1, 7, 1, 3))


@pytest.mark.parametrize("enforce_sorted", [False, True], ids=["unsorted", "sorted"])
def test_packed_sequences_keep_their_layout(enforce_sorted: bool) -> None:
    ref, compat = _pair()
    torch.manual_seed(1)
    seqs = [torch.randn(n, 3) for n in ((6, 4, 2) if enforce_sorted else (4, 6, 2))]
    packed = pack_sequence(seqs, enforce_sorted=enforce_sorted)
    (out_r, (h_r, c_r)), (out_c, (h_c, c_c)) = ref(packed), compat(packed)
    assert torch.equal(out_c.batch_sizes, out_r.batch_sizes)
    torch.testing.assert_close(out_c.data, out_r.data)  # same element order: the data pairs with packed targets
    torch.testing.assert_close(h_c, h_r)
    torch.testing.assert_close(c_c, c_r)


def test_attributes_of_nn_lstm() -> None:
    ref, compat = _pair(batch_first=True)
    for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional", "proj_size"):
        assert getattr(compat, name) == getattr(ref, name), name
    compat.flatten_parameters()  # no-op
    assert [[p is q for p, q in zip(a, b)] for a, b in zip(compat.all_weights, ref.all_weights)] == [[True] * 4] * 2
    assert compat.mode == "ann" and isinstance(compat.spiking, SpikingLSTM)


def test_parameters_are_the_nn_lstms_objects_under_its_names() -> None:
    ref, compat = _pair()
    names = [n for n, _ in ref.named_parameters()]
    own = dict(compat.named_parameters())
    assert all(own[n] is getattr(ref, n) and getattr(compat, n) is getattr(ref, n) for n in names)
    assert all(getattr(compat.spiking, n) is getattr(ref, n) for n in names)  # the inner layer computes with them
    assert [n for n in own if n not in names] == [n for n in own if n.startswith("spiking.neurons.")]


def test_an_optimizer_holding_the_nn_lstm_parameters_keeps_training_them() -> None:
    ref, _ = _pair()
    optimizer = torch.optim.SGD(ref.parameters(), lr=0.5)
    compat = LSTMCompat.from_torch(ref)  # replaced after the optimizer was built
    before = ref.weight_hh_l1.detach().clone()
    out, _ = compat(torch.randn(6, 4, 3))
    out.sum().backward()
    optimizer.step()
    assert not torch.equal(compat.weight_hh_l1, before) and compat.weight_hh_l1 is ref.weight_hh_l1


def test_state_dict_keys_are_nn_lstms_plus_the_spiking_state() -> None:
    ref, compat = _pair()
    keys = list(compat.state_dict())
    assert keys[: len(ref.state_dict())] == list(ref.state_dict())
    assert all(k.startswith("spiking.") for k in keys[len(ref.state_dict()) :])
    assert "spiking._extra_state" in keys and not any(k.startswith("spiking.weight") for k in keys)


def test_a_plain_nn_lstm_checkpoint_loads_strictly() -> None:
    ref, _ = _pair()
    wrapper = nn.Sequential(nn.Identity(), LSTMCompat(3, 5, num_layers=2))
    foreign = {f"1.{k}": v for k, v in ref.state_dict().items()}  # a foreign model's checkpoint
    assert wrapper.load_state_dict(foreign) is not None
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(wrapper[1](x)[0], ref(x)[0])
    assert wrapper[1].spiking.weight_ih_l0 is wrapper[1].weight_ih_l0


def test_own_checkpoints_round_trip_with_thresholds_and_mode() -> None:
    _, compat = _pair()
    compat.spiking.configure(mode="snn", timesteps=3)
    with torch.no_grad():
        compat.spiking.neurons[1].f.threshold.fill_(2.5)
    fresh = LSTMCompat(3, 5, num_layers=2)
    fresh.load_state_dict(compat.state_dict())
    assert (fresh.mode, fresh.timesteps) == ("snn", 3) and float(fresh.spiking.neurons[1].f.threshold) == 2.5
    missing = dict(compat.state_dict())
    del missing["spiking.neurons.0.i.threshold"]
    with pytest.raises(RuntimeError, match=r"spiking\.neurons\.0\.i\.threshold"):  # a partial spiking state is reported
        fresh.load_state_dict(missing)
    del missing["weight_hh_l0"]
    with pytest.raises(RuntimeError, match=r'"weight_hh_l0"'):
        fresh.load_state_dict(missing)


def test_checkpoints_of_the_subclassing_lstmcompat_still_load() -> None:
    """The earlier LSTMCompat (a SpikingLSTM subclass) saved neurons.* and _extra_state at the top."""
    _, compat = _pair()
    compat.spiking.configure(mode="snn", timesteps=4)
    old = {k.removeprefix("spiking."): v for k, v in compat.state_dict().items()}
    assert "neurons.0.i.threshold" in old and "_extra_state" in old
    fresh = LSTMCompat(3, 5, num_layers=2)
    fresh.load_state_dict(old)
    assert (fresh.mode, fresh.timesteps) == ("snn", 4)


def test_stats_come_from_the_inner_layer_once() -> None:
    model = nn.ModuleDict({"rnn": LSTMCompat(3, 5, mode="snn", timesteps=2)})
    assert stats_sources(model) == [model["rnn"].spiking]  # found, and not twice
    assert list(named_stats_sources(model)) == ["rnn"]
    seen = []
    handle = model["rnn"].register_stats_hook(lambda module, stats: seen.append((module, len(stats))))
    model["rnn"](torch.randn(4, 2, 3))
    handle.remove()
    assert seen == [(model["rnn"].spiking, 1)]


def test_device_dtype_moves_and_copies_keep_the_weights_shared() -> None:
    _, compat = _pair()
    compat.double()
    assert compat.spiking.weight_ih_l0 is compat.weight_ih_l0 and compat.weight_ih_l0.dtype == torch.float64
    twin = copy.deepcopy(compat)
    assert twin.spiking.weight_hh_l1 is twin.weight_hh_l1 and twin.weight_hh_l1 is not compat.weight_hh_l1
    compat.weight_ih_l0 = nn.Parameter(torch.zeros_like(compat.weight_ih_l0))  # reassigned, as on nn.LSTM
    assert compat.spiking.weight_ih_l0 is compat.weight_ih_l0


def test_constructor_takes_nn_lstms_arguments() -> None:
    compat = LSTMCompat(3, 5, 2, True, True, 0.0)  # nn.LSTM's positional order
    assert (compat.num_layers, compat.batch_first, compat.spiking.activation) == (2, True, "standard")
    with pytest.raises(NotConvertibleError, match="bidirectional=True"):
        LSTMCompat(3, 5, bidirectional=True)


class _Init(nn.LSTM):
    """A subclass that only customises its initialisation: converts."""

    def __init__(self) -> None:
        super().__init__(3, 5)
        nn.init.zeros_(self.bias_hh_l0)


class _Peephole(nn.LSTM):
    """A subclass with its own forward: refused (the replacement would drop it)."""

    def forward(self, x, hx=None):  # type: ignore[override]
        return super().forward(x * 2, hx)


def test_which_lstms_convert() -> None:
    check_convertible(nn.LSTM(3, 5))
    check_convertible(_Init())
    cases = [
        (nn.LSTM(3, 5, bidirectional=True), "bidirectional"),
        (nn.LSTM(3, 5, proj_size=2), "proj_size=2"),
        (_Peephole(3, 5), "overrides forward"),
        (nn.utils.parametrizations.weight_norm(nn.LSTM(3, 5), "weight_hh_l0"), "parametrizations"),
    ]
    for lstm, match in cases:
        with pytest.raises(NotConvertibleError, match=f"'enc.rnn'.*{match}"):
            check_convertible(lstm, "enc.rnn")
    with pytest.raises(NotConvertibleError, match="not a torch.nn.LSTM"):
        check_convertible(nn.GRU(3, 5))
