"""MLX on a CPU without Metal: a fast BLAS, and float32 weights for small 4-bit models.

Measured on Linux x86-64 (2 cores): the `mlx[cpu]` wheel links a reference BLAS, so a
264x576x1536 matmul runs at about 4 GFLOPS, against about 145 with OpenBLAS; and MLX's 4-bit
kernels on the CPU do not use BLAS at all (about 125 ms per prompt token for SmolLM2-135M,
batched or not). With OpenBLAS and the 4-bit weights expanded to float32 at load time the same
prompt costs about 4 ms per token. The checkpoint stays the 4-bit one; only the CPU copy in
memory is expanded, and only while it stays small (`DEQUANTIZE_MAX_BYTES`).
On macOS MLX uses Metal and Accelerate, and none of this applies.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

# Expanding a 3B model to float32 would take ~12 GB; past this the 4-bit weights are kept.
DEQUANTIZE_MAX_BYTES = 4 * 2**30

_BLAS: dict[str, str | None] = {}
_BLAS_LOCK = threading.Lock()


def use_fast_blas() -> str | None:
    """Make MLX's `cblas_*` calls resolve to OpenBLAS (the copy faiss-cpu ships), once.

    Must run before `mlx.core` is first imported: the library is loaded RTLD_GLOBAL so the
    dynamic linker binds libmlx's undefined BLAS symbols to it. Returns its path, or None
    where it does not apply (macOS, MLX already imported, no OpenBLAS found).
    """
    with _BLAS_LOCK:  # a second thread must not import mlx.core while the first preloads
        if "path" not in _BLAS:
            _BLAS["path"] = _preload_openblas()
        return _BLAS["path"]


def _preload_openblas() -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    if "mlx.core" in sys.modules:
        log.debug("mlx.core was imported before the BLAS preload; it keeps its reference BLAS")
        return None
    try:
        import faiss  # its wheel carries OpenBLAS beside it, with the standard cblas symbols
    except ImportError:
        return None
    libs_dir = os.path.join(os.path.dirname(os.path.dirname(faiss.__file__)), "faiss_cpu.libs")
    found = sorted(glob.glob(os.path.join(libs_dir, "libopenblas*.so*")))
    if not found:
        return None
    try:
        # Already loaded by faiss (with its own dependencies): promote it to the global scope.
        ctypes.CDLL(found[0], mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD)
    except OSError as e:
        log.debug("OpenBLAS preload failed (%s); MLX keeps its reference BLAS", e)
        return None
    return found[0]


def has_metal() -> bool:
    use_fast_blas()
    import mlx.core as mx

    return bool(mx.metal.is_available())


def _quantized_params(model: Any) -> int:
    """How many weights the model holds in quantized layers (0 when none): every module with
    packed weights and a bit width (linear, embedding, and the experts of a mixture)."""
    total = 0
    for _, module in model.named_modules():
        bits = getattr(module, "bits", None)
        weight = module.get("weight") if hasattr(module, "get") else None
        if isinstance(bits, int) and bits > 0 and weight is not None and "scales" in module:
            total += int(weight.size) * 32 // bits
    return total


def prepare_for_cpu(model: Any) -> tuple[Any, bool]:
    """On a CPU, expand a small quantized model to float32; returns (model, expanded)."""
    if has_metal():
        return model, False
    n = _quantized_params(model)
    if n == 0 or n * 4 > DEQUANTIZE_MAX_BYTES:
        return model, False
    from mlx_lm.utils import dequantize_model

    return dequantize_model(model), True
