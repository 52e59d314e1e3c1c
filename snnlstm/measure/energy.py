"""Energy and latency models of spiking vs. non-spiking LSTMs (Datta et al. 2022, Sec. 5).

Digital CMOS (45 nm, Horowitz 2014): a 32-bit floating-point multiply-accumulate costs
``E_MAC = 4.6 pJ`` and an accumulate ``E_AC = 0.9 pJ``, so a network that runs ``MAC`` multiply-
accumulates and ``AC`` accumulates uses

.. math::  E = MAC \\cdot E_{MAC} + AC \\cdot E_{AC}.

A spiking network replaces most MACs by ACs (a spike is 0/±1, so a weight times a spike is a
selection plus an add), and the ratio ``E_ANN / E_SNN`` is the energy saving.

Neuromorphic hardware (Park et al. 2020, as used by Datta et al.): per-platform normalised
compute and static (leakage, per time step) energies, ``E = FLOPs * E_compute + T * E_static``.

All functions accept Python numbers or (0-dim or broadcastable) tensors for the operation counts.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal, Mapping, Union

import torch
from torch import Tensor

#: Energy of one 32-bit floating-point multiply-accumulate in 45 nm CMOS, pJ (Horowitz 2014).
E_MAC_PJ: float = 4.6
#: Energy of one 32-bit floating-point accumulate in 45 nm CMOS, pJ (Horowitz 2014).
E_AC_PJ: float = 0.9

#: Platform -> normalised ``(E_compute, E_static)`` (Park et al. 2020, as used by Datta et al. 2022).
NEUROMORPHIC: dict[str, tuple[float, float]] = {"truenorth": (0.4, 0.6), "spinnaker": (0.64, 0.36)}

#: Schedules understood by :func:`latency_steps`.
LATENCY_SCHEMES: tuple[str, ...] = ("pipelined", "sequential", "ann")

Number = Union[int, float, Tensor]


def _all(condition: bool | Tensor) -> bool:
    return bool(torch.as_tensor(condition).all())


def check_energy_costs(e_mac_pj: float, e_ac_pj: float) -> None:
    """Validate per-operation energies.

    Args:
        e_mac_pj: energy of one multiply-accumulate, pJ.
        e_ac_pj: energy of one accumulate, pJ.

    Raises:
        ValueError: a value that is not a finite number > 0 (the message names it).
    """
    for name, value in (("e_mac_pj", e_mac_pj), ("e_ac_pj", e_ac_pj)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} (energy per operation in pJ) must be a finite number > 0, got {value!r}")


def _check_ops(**ops: Number) -> None:
    for name, value in ops.items():
        if not _all(torch.as_tensor(value) >= 0):
            raise ValueError(f"{name} (operation count) must be >= 0, got {value!r}")


def compute_energy_pj(mac: Number, ac: Number, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ) -> Number:
    """Compute energy of a network run on digital CMOS.

    .. math::  E = MAC \\cdot E_{MAC} + AC \\cdot E_{AC}

    Args:
        mac: multiply-accumulate operations (number or tensor).
        ac: accumulate operations (number or tensor, broadcastable with ``mac``).
        e_mac_pj: energy per MAC in pJ (default 4.6, 45 nm).
        e_ac_pj: energy per AC in pJ (default 0.9, 45 nm).

    Returns:
        Energy in pJ, same type/shape as ``mac * e_mac_pj + ac * e_ac_pj``.

    Raises:
        ValueError: non-positive energies or negative operation counts.
    """
    check_energy_costs(e_mac_pj, e_ac_pj)
    _check_ops(mac=mac, ac=ac)
    return mac * e_mac_pj + ac * e_ac_pj


def energy_ratio(
    ann_mac: Number,
    ann_ac: Number,
    mac: Number,
    ac: Number,
    e_mac_pj: float = E_MAC_PJ,
    e_ac_pj: float = E_AC_PJ,
) -> Number:
    """Energy saving of the spiking network over the iso-architecture non-spiking one.

    .. math::  \\frac{E_{ANN}}{E_{SNN}} =
               \\frac{MAC_{ANN} E_{MAC} + AC_{ANN} E_{AC}}{MAC_{SNN} E_{MAC} + AC_{SNN} E_{AC}}

    Args:
        ann_mac: MACs of the non-spiking network.
        ann_ac: ACs of the non-spiking network.
        mac: MACs of the spiking network.
        ac: ACs of the spiking network.
        e_mac_pj: energy per MAC in pJ.
        e_ac_pj: energy per AC in pJ.

    Returns:
        ``E_ANN / E_SNN`` (> 1 means the SNN saves energy); a tensor if any input is a tensor.

    Raises:
        ValueError: non-positive per-operation energies, negative counts, or a total energy of 0
            (no operations on one side, the ratio is undefined).
    """
    e_ann = compute_energy_pj(ann_mac, ann_ac, e_mac_pj, e_ac_pj)
    e_snn = compute_energy_pj(mac, ac, e_mac_pj, e_ac_pj)
    for name, value in (("ANN energy", e_ann), ("SNN energy", e_snn)):
        if not _all(torch.as_tensor(value) > 0):
            raise ValueError(f"{name} must be > 0 to form E_ANN / E_SNN, got {value!r} pJ (no operations counted?)")
    return e_ann / e_snn


def neuromorphic_energy(flops: Number, timesteps: Number, platform: str) -> Number:
    """Normalised energy on a neuromorphic platform (Park et al. 2020).

    .. math::  E = FLOPs \\cdot E_{compute} + T \\cdot E_{static}

    Args:
        flops: synaptic operations (ACs of the SNN; for an ANN its MACs).
        timesteps: time steps the hardware runs (e.g. :func:`latency_steps`), ``>= 1``.
        platform: key of :data:`NEUROMORPHIC` (``"truenorth"`` or ``"spinnaker"``; case-insensitive).

    Returns:
        Normalised energy (arbitrary units).

    Raises:
        ValueError: unknown platform (lists the allowed ones), negative flops, timesteps < 1.
    """
    key = platform.lower() if isinstance(platform, str) else platform
    if key not in NEUROMORPHIC:
        raise ValueError(f"unknown neuromorphic platform {platform!r}; allowed: {', '.join(NEUROMORPHIC)}")
    _check_ops(flops=flops)
    if not _all(torch.as_tensor(timesteps) >= 1):
        raise ValueError(f"timesteps must be >= 1, got {timesteps!r}")
    e_compute, e_static = NEUROMORPHIC[key]
    return flops * e_compute + timesteps * e_static


def latency_steps(
    seq_len: int, timesteps: int, scheme: Literal["pipelined", "sequential", "ann"] = "pipelined"
) -> int:
    """Time steps needed to process a sequence of ``N`` elements, ``T`` SNN steps each.

    * ``"pipelined"`` (Datta et al. wavefront): ``T + N - 1``
    * ``"sequential"`` (every element runs its T steps after the previous one): ``T * N``
    * ``"ann"`` (non-spiking LSTM, one step per element): ``N``

    Args:
        seq_len: sequence length N (``>= 1``).
        timesteps: SNN time steps T per element (``>= 1``; ignored by ``"ann"`` but validated).
        scheme: one of :data:`LATENCY_SCHEMES`.

    Returns:
        Number of time steps.

    Raises:
        ValueError: unknown scheme (lists the allowed ones) or values that are not integers >= 1.
    """
    if scheme not in LATENCY_SCHEMES:
        raise ValueError(f"unknown latency scheme {scheme!r}; allowed: {', '.join(LATENCY_SCHEMES)}")
    for name, value in (("seq_len", seq_len), ("timesteps", timesteps)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    seq_len, timesteps = int(seq_len), int(timesteps)
    if scheme == "pipelined":
        return timesteps + seq_len - 1
    if scheme == "sequential":
        return timesteps * seq_len
    return seq_len


def energy_report(
    stats: Mapping[str, float],
    timesteps: int,
    seq_len: int,
    e_mac_pj: float = E_MAC_PJ,
    e_ac_pj: float = E_AC_PJ,
) -> dict[str, float]:
    """Energy and latency of one evaluated spiking model against its non-spiking twin.

    Args:
        stats: per-sample operation counts with the :class:`~snnlstm.measure.metrics.SpikeStatsMetric` keys
            ``synops/ac_per_sample``, ``synops/mac_per_sample``, ``ann/ac_per_sample``,
            ``ann/mac_per_sample`` (measured from spike counts).
        timesteps: SNN time steps T per input element.
        seq_len: sequence length N.
        e_mac_pj, e_ac_pj: per-operation energies of the CMOS model.

    Returns:
        ``snn_pj``, ``ann_pj`` (per sample) and ``energy_ratio`` (``E_ANN / E_SNN``, CMOS model);
        ``{platform}_ratio`` for every :data:`NEUROMORPHIC` platform with
        ``E = FLOPs * E_compute + steps * E_static``, FLOPs = all operations per sample, steps =
        T+N-1 for the pipelined SNN and N for the ANN; and the latencies ``latency_pipelined``
        (T+N-1), ``latency_hybrid`` (T*N, Ponghiran & Roy's schedule) and ``latency_ann`` (N).

    Raises:
        KeyError: a required count is missing (the message lists the keys).
    """
    keys = ("synops/ac_per_sample", "synops/mac_per_sample", "ann/ac_per_sample", "ann/mac_per_sample")
    missing = [k for k in keys if k not in stats]
    if missing:
        raise KeyError(f"energy_report needs the operation counts {list(keys)}; missing {missing}")
    ac, mac = float(stats[keys[0]]), float(stats[keys[1]])
    ann_ac, ann_mac = float(stats[keys[2]]), float(stats[keys[3]])
    pipelined = latency_steps(seq_len, timesteps, "pipelined")
    out = {
        "snn_pj": float(compute_energy_pj(mac, ac, e_mac_pj, e_ac_pj)),
        "ann_pj": float(compute_energy_pj(ann_mac, ann_ac, e_mac_pj, e_ac_pj)),
        "energy_ratio": float(energy_ratio(ann_mac, ann_ac, mac, ac, e_mac_pj, e_ac_pj)),
        "latency_pipelined": float(pipelined),
        "latency_hybrid": float(latency_steps(seq_len, timesteps, "sequential")),
        "latency_ann": float(latency_steps(seq_len, timesteps, "ann")),
    }
    for platform in NEUROMORPHIC:
        e_snn = neuromorphic_energy(ac + mac, pipelined, platform)
        e_ann = neuromorphic_energy(ann_ac + ann_mac, seq_len, platform)
        out[f"{platform}_ratio"] = float(e_ann / e_snn)
    return out
