"""The machine a benchmark ran on, recorded beside its results."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe_machine() -> dict:
    """Cores, CPU model, memory, kernel, Python, and how busy the machine was.

    The load average is read when this is called (1, 5 and 15 minutes); results taken
    on a shared machine say so through it.
    """
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
