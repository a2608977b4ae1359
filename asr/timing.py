"""Where a command's wall-clock time goes: import, load, decode and finish.

The clock starts with the command: at the process's start when ``asr`` is the program (so
interpreter start-up and imports count), at the call when ``asr.cli.main`` runs in a process
that was already going (a test, a benchmark). Each :meth:`PhaseClock.lap` ends one phase;
the phases follow each other without gaps, so they add up to the total.

>>> clock = PhaseClock(start=0.0)
>>> sorted(clock.seconds)
['import']
"""

from __future__ import annotations

import os
import time

PHASES = ("import", "load", "decode", "finish")

_command_start: float | None = None


def process_start() -> float:
    """When this process started, on the :func:`time.perf_counter` clock (Linux ``/proc``,
    10 ms resolution); elsewhere, now."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
        ticks_after_boot = int(fields[19])  # field 22, starttime
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks_after_boot / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):  # no /proc, no CLOCK_BOOTTIME
        return time.perf_counter()
    return time.perf_counter() - max(age, 0.0)


def mark_command_start(program: bool) -> None:
    """Start the command's clock: at the process start for the ``asr`` program, else now."""
    global _command_start
    _command_start = process_start() if program else time.perf_counter()


def command_start() -> float:
    """The start :func:`mark_command_start` set, else the process's start."""
    return _command_start if _command_start is not None else process_start()


class PhaseClock:
    """Seconds per phase of one command; created when its imports are done (the first phase)."""

    def __init__(self, start: float | None = None) -> None:
        self.start = command_start() if start is None else start
        self._last = time.perf_counter()
        self.seconds: dict[str, float] = {"import": self._last - self.start}

    def lap(self, phase: str) -> None:
        """End ``phase`` now (one of :data:`PHASES`; a phase lapped twice adds up)."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; one of {', '.join(PHASES)}")
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now

    @property
    def total(self) -> float:
        """From the command's start to the last lap."""
        return self._last - self.start
