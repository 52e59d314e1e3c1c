"""``BackendChoice``: a module that runs on one backend, requested by name and resolved explicitly.

Shared by :class:`~snnlstm.nn.lstm.SpikingLSTM` and :class:`~snnlstm.nn.lsnn.LSNN`: ``backend=`` takes
``"auto"``, ``"cpp"`` or ``"torch"`` (:data:`snnlstm.backends.selection.BACKENDS`); the resolution
depends on the module's device, dtype and settings, is cached per combination, logged once, and visible
as ``module.backend`` (``"cpp"``/``"torch"``), ``module.kernel`` and ``module.resolve_backend().reason``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from ..backends.selection import Resolved, check_backend


class BackendChoice:
    """Mixin for an ``nn.Module``; subclasses implement :meth:`_backend_weight`, :meth:`_backend_settings`
    and :meth:`_resolve` (the pure resolution of their backend module)."""

    #: the logger the first resolution of each combination is reported to
    _backend_log: logging.Logger

    def _backend_weight(self) -> Tensor:
        """A parameter whose device and dtype the backend must run on."""
        raise NotImplementedError

    def _backend_settings(self) -> tuple[Any, ...]:
        """Everything besides the device and dtype that the choice depends on (hashable)."""
        raise NotImplementedError

    def _resolve(self, device: torch.device, dtype: torch.dtype) -> Resolved:
        """Resolve :attr:`backend_request` for ``device``/``dtype`` and the current settings.

        Raises:
            snnlstm.backends.selection.BackendError: an explicit backend that cannot run.
        """
        raise NotImplementedError

    def _backend_label(self) -> str:
        """How the log line names the module (and its mode)."""
        return type(self).__name__

    @property
    def backend(self) -> str:
        """The backend that runs the module on its device and dtype (``"cpp"`` or ``"torch"``);
        assign ``"auto"``, ``"cpp"`` or ``"torch"`` to request one."""
        return self.resolve_backend().backend

    @backend.setter
    def backend(self, name: str) -> None:
        check_backend(name)
        self.backend_request = name
        self._resolved: dict[tuple[Any, ...], Resolved] = {}

    @property
    def kernel(self) -> str:
        """The implementation the resolved backend runs (one of :data:`snnlstm.backends.selection.KERNELS`)."""
        return self.resolve_backend().kernel

    def resolve_backend(self) -> Resolved:
        """The resolved backend for the current device, dtype and settings (cached; the first
        resolution of each combination is logged at INFO level).

        Raises:
            snnlstm.backends.selection.BackendError: an explicit backend that cannot run.
        """
        weight = self._backend_weight()
        key = (self.backend_request, weight.device, weight.dtype, self._backend_settings())
        if key not in self._resolved:
            resolved = self._resolve(weight.device, weight.dtype)
            self._resolved[key] = resolved
            why = f" ({resolved.reason})" if resolved.reason else ""
            self._backend_log.info("%s on %s/%s runs backend %r, %s%s", self._backend_label(), weight.device,
                                   str(weight.dtype).removeprefix("torch."), resolved.backend, resolved.kernel, why)
        return self._resolved[key]
