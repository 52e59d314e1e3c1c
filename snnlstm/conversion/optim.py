"""Learning-rate bookkeeping of a conversion in the middle of training, scheduler-aware.

A conversion scales every learning rate (``lr_factor``) and may add a parameter group (the
thresholds and leaks). PyTorch's schedulers keep their own copies of the learning rates: closed-form
ones compute ``base_lr * f(epoch)`` from ``base_lrs`` (and ``initial_lr`` in each group), OneCycleLR
reads ``max_lr``/``min_lr`` from the groups, CyclicLR ``max_lrs``, and every scheduler zips its lists
with the optimizer's groups, so a group missing from them is silently never scheduled. The helpers
here update all of those, so that after the conversion the schedule continues times ``lr_factor``
and the new group follows it too.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

__all__ = ["add_param_group", "flat_schedulers", "scale_learning_rates"]

#: per-group keys holding learning rates (``initial_lr``: LRScheduler's base; OneCycleLR's ``max_lr``/``min_lr``)
_GROUP_LRS: tuple[str, ...] = ("lr", "initial_lr", "max_lr", "min_lr")
#: per-group scheduler lists holding learning rates, scaled with them
_SCHEDULER_LRS: tuple[str, ...] = ("base_lrs", "_last_lr", "max_lrs")
#: per-group scheduler lists that are not learning rates (group 0's entry is copied for a new group; LambdaLR's
#: ``lr_lambdas`` too: the new group follows group 0's schedule)
_SCHEDULER_OTHER: tuple[str, ...] = ("min_lrs", "base_momentums", "max_momentums", "lr_lambdas")


def flat_schedulers(schedulers: Iterable[Any], optimizer: torch.optim.Optimizer) -> list[Any]:
    """The schedulers of ``optimizer`` among ``schedulers``, the children of SequentialLR/ChainedScheduler included."""
    out: list[Any] = []
    stack = list(schedulers)
    while stack:
        scheduler = stack.pop(0)
        children = getattr(scheduler, "_schedulers", None)
        if children:
            stack.extend(children)
        if getattr(scheduler, "optimizer", None) is optimizer:
            out.append(scheduler)
    return out


def scale_learning_rates(optimizer: torch.optim.Optimizer, schedulers: Iterable[Any], factor: float) -> None:
    """Multiply every learning rate of ``optimizer`` by ``factor``, in its groups and in its schedulers.

    Args:
        optimizer: the optimizer.
        schedulers: its schedulers (others are ignored; see :func:`flat_schedulers`).
        factor: the multiplier.
    """
    for group in optimizer.param_groups:
        for key in _GROUP_LRS:
            if key in group and group[key] is not None:
                group[key] = group[key] * factor
    for scheduler in flat_schedulers(schedulers, optimizer):
        for attr in _SCHEDULER_LRS:
            values = getattr(scheduler, attr, None)
            if isinstance(values, list):
                setattr(scheduler, attr, [v * factor for v in values])


def add_param_group(
    optimizer: torch.optim.Optimizer,
    schedulers: Iterable[Any],
    params: list[torch.nn.Parameter],
    lr: float,
    weight_decay: float = 0.0,
) -> dict[str, Any]:
    """Add ``params`` as a new group with learning rate ``lr`` (now), scheduled like group 0.

    The group's scheduler bases (``initial_lr``, ``base_lrs``, ``max_lr``...) are group 0's times
    ``lr / group0.lr``, so a closed-form schedule gives ``lr`` now and follows group 0's curve after.

    Returns:
        The new group.
    """
    ref = optimizer.param_groups[0]
    current = float(ref["lr"])
    ratio = lr / current if current else 1.0
    group: dict[str, Any] = {"params": params, "lr": lr, "weight_decay": weight_decay}
    for key in _GROUP_LRS[1:]:
        if key in ref and ref[key] is not None:
            group[key] = ref[key] * ratio if current else lr
    optimizer.add_param_group(group)
    groups = len(optimizer.param_groups)
    for scheduler in flat_schedulers(schedulers, optimizer):
        for attr in _SCHEDULER_LRS + _SCHEDULER_OTHER:
            values = getattr(scheduler, attr, None)
            if not isinstance(values, list) or len(values) != groups - 1 or not values:
                continue
            if attr == "base_lrs":
                values.append(group.get("initial_lr", lr))
            elif attr == "_last_lr":
                values.append(lr)
            elif attr in _SCHEDULER_LRS:
                values.append(values[0] * ratio)
            else:
                values.append(values[0])
    return group
