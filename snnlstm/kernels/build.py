"""Build and load the fused C++ kernels (``snnlstm/kernels/csrc/*.cpp``): the spiking LSTM cell's
wavefront forward/backward and the hybrid cell's event-driven element pass (``fused_cell.cpp``), the
non-spiking LSTM layer's sequence forward/backward (``ann_layer.cpp``) and the LSNN layer's
(``lsnn_layer.cpp``).

The kernels are compiled with ``torch.utils.cpp_extension.load`` on first use (about a minute)
and cached by torch under ``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``); the
module name carries a hash of the source, so an edited kernel is rebuilt. A failed build is warned
about once; the layers' backend resolution (:mod:`snnlstm.backends.selection`) then chooses the
torch backend under ``backend="auto"`` and says why, and refuses ``backend="cpp"`` by name.

Set ``SNNLSTM_NO_CPP=1`` to skip the kernels entirely.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path
from types import ModuleType

SOURCES: tuple[Path, ...] = tuple(Path(__file__).parent / "csrc" / name for name in ("fused_cell.cpp", "ann_layer.cpp", "lsnn_layer.cpp", "stream_step.cpp"))
#: portable flags (no -march=native: the cache may be shared by different machines)
#: -fno-trapping-math lets the compiler if-convert (and so vectorise) the branch-free loops; it does
#: not change results (no FP exception handling is used)
CFLAGS: tuple[str, ...] = ("-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math")
_LOCK = threading.Lock()
_STATE: dict[str, ModuleType | None] = {}


def fused_cell_kernels() -> ModuleType | None:
    """The compiled kernel module, or None when disabled or the build failed (warned once)."""
    if "module" in _STATE:
        return _STATE["module"]
    with _LOCK:
        if "module" not in _STATE:
            _STATE["module"] = _build()
    return _STATE["module"]


def _build() -> ModuleType | None:
    if os.environ.get("SNNLSTM_NO_CPP", "") not in ("", "0"):
        return None
    try:
        # importing cpp_extension on a machine without CUDA logs a harmless "No CUDA runtime" warning
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        from torch.utils import cpp_extension

        digest = hashlib.sha1(b"".join(p.read_bytes() for p in SOURCES) + " ".join(CFLAGS).encode()).hexdigest()[:12]
        return cpp_extension.load(
            name=f"snnlstm_fused_cell_{digest}",
            sources=[str(p) for p in SOURCES],
            extra_cflags=list(CFLAGS),
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as err:  # no compiler, no ninja, read-only cache, ...
        warnings.warn(
            f"snnlstm: could not build the fused C++ cell kernels ({type(err).__name__}: {err}); "
            "using the slower Python implementation. Install a C++ compiler and ninja to enable them, "
            "or set SNNLSTM_NO_CPP=1 to silence this warning.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
