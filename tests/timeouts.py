"""Timeouts for subprocesses in tests: generous, and scaled by how busy the machine is.

A timeout here only stops a child that hung; it must never measure speed. `make test`
beside a training job (load 8 on 2 cores) runs children 4x slower than on an idle box.
"""

from __future__ import annotations

import os

SLACK = 3.0  # over a time measured on an idle machine


def generous(seconds: float) -> float:
    """``seconds`` (what the child needs on an idle machine) x SLACK, x load per core when busier than that."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        load = 0.0
    return seconds * SLACK * max(1.0, load / (os.cpu_count() or 1))
