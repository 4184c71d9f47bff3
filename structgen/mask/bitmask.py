"""Token bitmasks: int32 ``[batch, ceil(vocab/32)]``, bit j of word i = token 32*i+j,
1 = allowed (xgrammar's layout).  Works on numpy arrays and torch tensors; torch
is imported only when a tensor is passed."""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Literal

import numpy as np

from ..errors import ConfigurationError


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def token_bitset(num_words: int, ids) -> np.ndarray:
    """A uint32 ``[num_words]`` bitset with the bits of ``ids`` set (ids past it ignored)."""
    words = np.zeros(num_words, np.uint32)
    for t in ids:
        if 0 <= t < 32 * num_words:
            words[t >> 5] |= np.uint32(1 << (t & 31))
    return words


def bitset_to_bool(words: np.ndarray, width: int, allowed_below: int | None = None) -> np.ndarray:
    """bool ``[..., width]``: bit t of ``words`` (uint32/int32 rows) for t < ``allowed_below``
    (default ``width``); ids past the words or the limit are False."""
    bits = np.unpackbits(np.ascontiguousarray(words).view(np.uint8), axis=-1, bitorder="little")
    n = min(bits.shape[-1], width, width if allowed_below is None else allowed_below)
    out = np.zeros(bits.shape[:-1] + (width,), dtype=bool)
    out[..., :n] = bits[..., :n].view(np.bool_)
    return out


def allocate_token_bitmask(batch_size: int, vocab_size: int, *,
                           backend: Literal["numpy", "torch"] = "numpy"):
    """A ``[batch_size, ceil(vocab_size/32)]`` int32 bitmask, all tokens allowed."""
    if batch_size < 1 or vocab_size < 1:
        raise ConfigurationError(f"batch_size and vocab_size must be positive, got {batch_size}, {vocab_size}")
    shape = (batch_size, (vocab_size + 31) // 32)
    if backend == "torch":
        import torch

        return torch.full(shape, -1, dtype=torch.int32)
    if backend != "numpy":
        raise ConfigurationError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    return np.full(shape, -1, dtype=np.int32)


def reset_token_bitmask(bitmask) -> None:
    """Allow every token again."""
    bitmask.fill(-1) if not _is_torch(bitmask) else bitmask.fill_(-1)


@lru_cache(maxsize=None)
def _quiet_readonly_warning() -> None:
    """Cached masks are read-only; torch warns when wrapping one, but here it is only read."""
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


_INT32 = np.dtype(np.int32)


def write_row(bitmask, index: int, words: np.ndarray) -> None:
    """Copy a uint32 word array into row ``index`` of ``bitmask``."""
    if type(bitmask) is np.ndarray and bitmask.dtype is _INT32 and bitmask.ndim == 2 \
            and bitmask.shape[1] == words.shape[0]:  # the common case, checked cheaply (warm fills)
        bitmask[index] = words.view(_INT32)
        return
    if bitmask.ndim != 2 or bitmask.shape[1] != words.shape[0]:
        raise ConfigurationError(
            f"bitmask must have shape [batch, {words.shape[0]}], got {tuple(bitmask.shape)}")
    if _is_torch(bitmask):
        import torch

        if bitmask.dtype != torch.int32:
            raise ConfigurationError(f"bitmask dtype must be torch.int32, got {bitmask.dtype}")
        _quiet_readonly_warning()
        bitmask[index].copy_(torch.from_numpy(words.view(np.int32)), non_blocking=True)
    else:
        if bitmask.dtype != np.int32:
            raise ConfigurationError(f"bitmask dtype must be int32, got {bitmask.dtype}")
        bitmask[index] = words.view(np.int32)


def apply_token_bitmask_inplace(logits, bitmask, *, vocab_size: int | None = None,
                                indices=None) -> None:
    """Set disallowed logits to -inf in place.

    ``logits``: ``[batch, V]`` (or ``[V]``) torch tensor (CPU or CUDA) or numpy
    float array; ``bitmask``: int32 ``[batch, words]`` (same kind).  Columns at or
    past ``vocab_size`` (default: ``min(V, 32*words)``) are masked: padding ids are
    never allowed.  ``indices`` selects which logits rows the bitmask rows apply to."""
    squeeze = logits.ndim == 1
    if squeeze:
        logits = logits[None]
    if bitmask.ndim == 1:
        bitmask = bitmask[None]
    width = logits.shape[-1]
    vocab = min(width, bitmask.shape[1] * 32) if vocab_size is None else int(vocab_size)
    if indices is None and bitmask.shape[0] != logits.shape[0]:
        raise ConfigurationError(
            f"bitmask has {bitmask.shape[0]} rows but logits have {logits.shape[0]}; pass indices=")
    if _is_torch(logits):
        _apply_torch(logits, bitmask, vocab, indices)
        return
    from .kernels import get_kernels

    if indices is not None:
        sub = logits[list(indices)]
        _apply_numpy(sub, np.asarray(bitmask), vocab, get_kernels())
        logits[list(indices)] = sub
    else:
        _apply_numpy(logits, np.asarray(bitmask), vocab, get_kernels())


def _apply_numpy(logits, bitmask, vocab, kernels) -> None:
    if logits.dtype not in (np.float32, np.float64):
        raise ConfigurationError(f"numpy logits must be float32/float64, got {logits.dtype}")
    kernels.apply_bitmask(logits, bitmask, vocab)


def _apply_torch(logits, bitmask, vocab, indices) -> None:
    import torch

    if not _is_torch(bitmask):
        bitmask = torch.from_numpy(np.ascontiguousarray(bitmask))
    if bitmask.dtype != torch.int32:
        raise ConfigurationError(f"bitmask dtype must be int32, got {bitmask.dtype}")
    bitmask = bitmask.to(logits.device, non_blocking=True)
    width = logits.shape[-1]
    shifts = torch.arange(32, device=logits.device, dtype=torch.int32)
    allowed = ((bitmask.unsqueeze(-1) >> shifts) & 1).bool().flatten(1)
    n = min(width, allowed.shape[1], vocab)
    full = torch.zeros((allowed.shape[0], width), dtype=torch.bool, device=logits.device)
    full[:, :n] = allowed[:, :n]
    if indices is None:
        logits.masked_fill_(~full, float("-inf"))
    else:
        idx = torch.as_tensor(list(indices), device=logits.device)
        rows = logits.index_select(0, idx).masked_fill_(~full, float("-inf"))
        logits.index_copy_(0, idx, rows)
