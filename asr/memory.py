"""Host-memory behaviour of the process: keep glibc from growing the heap with freed activations,
and keep Python's cycle collector off the objects that start-up imports create.

glibc serves large allocations with ``mmap`` and returns them on free, but each such free
raises its mmap threshold (up to 32 MiB on 64-bit), after which tensors of that size come from
the heap, where freed blocks stay resident and fragment. A training step allocates and frees
many activation-sized blocks, so the peak RSS of a step grows far beyond what it really holds
(BENCHMARKS.md, "Training memory": whisper-base LoRA, batch 8 at 30 s, two steps added 7.2 GiB
with glibc's default and 3.6 GiB with a fixed threshold). Fixing the threshold stops that.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 20
ENV_KEYS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def limit_heap_fragmentation(threshold: int = THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap and trim thresholds at ``threshold`` bytes (True when applied).

    A no-op off Linux/glibc, and when the user set ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` themselves, or ``ASR_KEEP_MALLOC=1``.
    """
    if not sys.platform.startswith("linux") or os.environ.get("ASR_KEEP_MALLOC") == "1":
        return False
    if any(key in os.environ for key in ENV_KEYS):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, threshold))


def pause_collection_for_startup() -> None:
    """Stop the cycle collector while a command imports its modules (torch, transformers ...).

    Those imports create some 700k objects that live until the process ends; the collector
    walks them again and again while they are made (0.5 s of CPU for whisper-base's imports
    here) and again in every later full collection, the one at exit included (about 1 s).
    :func:`startup_done` turns it back on with those objects out of its sight.
    """
    gc.disable()


def startup_done() -> None:
    """Hand the objects made so far to the permanent generation (``gc.freeze``, never scanned,
    never collected: a few MB of start-up garbage stay), then collect as usual."""
    gc.freeze()
    gc.enable()
