"""lr_factor and the thresholds' new group continue the LR schedule (optimizer and scheduler state)."""

from __future__ import annotations

from typing import Callable

import pytest
import torch

from snnlstm.conversion.optim import add_param_group, scale_learning_rates

SCHEDULERS: dict[str, Callable[[torch.optim.Optimizer], object]] = {
    "cosine": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8),
    "step": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    "lambda": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 / (1 + e)),
    "sequential": lambda opt: torch.optim.lr_scheduler.SequentialLR(
        opt,
        [torch.optim.lr_scheduler.LinearLR(opt, 0.5, total_iters=2), torch.optim.lr_scheduler.ExponentialLR(opt, 0.8)],
        milestones=[2],
    ),
}


def _run(name: str, convert_at: int | None, factor: float = 0.1, epochs: int = 7) -> list[list[float]]:
    weight, extra = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = SCHEDULERS[name](optimizer)
    lrs = []
    for epoch in range(epochs):
        if epoch == convert_at:
            scale_learning_rates(optimizer, [scheduler], factor)
            add_param_group(optimizer, [scheduler], [extra], lr=optimizer.param_groups[0]["lr"])
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedule_continues_times_lr_factor_and_schedules_the_new_group(name: str) -> None:
    reference = [lrs[0] for lrs in _run(name, convert_at=None)]
    converted = _run(name, convert_at=3)
    for epoch, lrs in enumerate(converted):
        expected = reference[epoch] * (0.1 if epoch >= 3 else 1.0)
        assert lrs[0] == pytest.approx(expected, rel=1e-6), (epoch, lrs)
        if epoch >= 3:
            assert lrs[1] == pytest.approx(expected, rel=1e-6), (epoch, lrs)  # the new group follows it


def test_an_explicit_group_lr_keeps_its_ratio_and_scheduler_lists_grow() -> None:
    weight, extra = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 0.5**e)
    scheduler.step()
    group = add_param_group(optimizer, [scheduler], [extra], lr=0.01)
    assert group["initial_lr"] == pytest.approx(0.02) and scheduler.base_lrs[1] == pytest.approx(0.02)
    assert len(scheduler.get_last_lr()) == 2
    scheduler.step()
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.005) and optimizer.param_groups[1]["weight_decay"] == 0.0


def test_plateau_scheduler_gets_a_floor_for_the_new_group() -> None:
    weight, extra = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.2)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0)
    add_param_group(optimizer, [plateau], [extra], lr=0.1)
    for loss in (1.0, 2.0, 3.0):
        plateau.step(loss)
    assert optimizer.param_groups[1]["lr"] < 0.1
