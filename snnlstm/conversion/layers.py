"""Finding the LSTM layers of a model, and swapping its ``torch.nn.LSTM`` layers for :class:`LSTMCompat`.

:func:`named_spiking_layers` names every :class:`~snnlstm.nn.lstm.SpikingLSTM` by its path, an
``LSTMCompat``'s inner layer by the ``LSTMCompat``'s path (the name the user gave the ``nn.LSTM``).
:func:`replace_torch_lstms` replaces every convertible ``nn.LSTM`` (see
:func:`snnlstm.nn.compat.check_convertible`) under every name that holds it, after checking all of them:
a model is converted completely or not at all.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..measure.stats import named_stats_sources
from ..nn.compat import LSTMCompat, check_convertible
from ..nn.lstm import SpikingLSTM

__all__ = ["named_spiking_layers", "replace_torch_lstms", "torch_lstm_names"]


def named_spiking_layers(module: nn.Module) -> dict[str, SpikingLSTM]:
    """Every SpikingLSTM in ``module`` by name, outermost first (``""`` for ``module`` itself)."""
    return {name: m for name, m in named_stats_sources(module, root_name="").items() if isinstance(m, SpikingLSTM)}


def torch_lstm_names(module: nn.Module) -> list[str]:
    """Paths of every ``torch.nn.LSTM`` (or subclass) in ``module``, aliases included."""
    return [name for name, m in module.named_modules(remove_duplicate=False) if isinstance(m, nn.LSTM)]


def replace_torch_lstms(module: nn.Module, **kwargs: Any) -> list[str]:
    """Replace every ``torch.nn.LSTM`` inside ``module`` by an :class:`LSTMCompat` in ANN mode.

    The new layer takes over the ``nn.LSTM``'s Parameter objects and computes the same outputs, so this
    can happen before the optimizer is built or after (the optimizer keeps its parameters). An LSTM held
    under several names (aliases) gets one replacement that every name then holds.

    Args:
        module: the model (not itself an ``nn.LSTM``: use ``LSTMCompat.from_torch`` for that).
        **kwargs: further :class:`~snnlstm.nn.lstm.SpikingLSTM` arguments (e.g. ``compile``).

    Returns:
        Every path that now holds a replacement (aliases included), sorted.

    Raises:
        ValueError: ``module`` is an ``nn.LSTM``.
        snnlstm.nn.compat.NotConvertibleError: an LSTM that cannot convert (named in the message);
            nothing is replaced then.
    """
    if isinstance(module, nn.LSTM):
        raise ValueError(
            "the module itself is an nn.LSTM and cannot be replaced in place: use "
            "snnlstm.nn.compat.LSTMCompat.from_torch(module), or convert(module, recipe).module"
        )
    found: dict[int, tuple[str, nn.LSTM]] = {}
    names: list[str] = []
    for name, child in module.named_modules(remove_duplicate=False):
        if isinstance(child, nn.LSTM):
            found.setdefault(id(child), (name, child))
            names.append(name)
    for name, lstm in found.values():
        check_convertible(lstm, name)
    replacements = {key: LSTMCompat.from_torch(lstm, name=name, **kwargs) for key, (name, lstm) in found.items()}
    for parent in list(module.modules()):
        for key, child in list(parent._modules.items()):
            if child is not None and id(child) in replacements:
                parent._modules[key] = replacements[id(child)]
    return sorted(set(names))
