"""Helper for the benchmarks: time a statement in a fresh Python process (cold imports)."""

from __future__ import annotations

import json
import subprocess
import sys


def fresh_seconds(setup: str, timed: str, timeout: float = 300) -> float:
    """Seconds `timed` takes in a new interpreter after `setup` (neither shares our imports)."""
    code = (f"import time\n{setup}\nt0 = time.perf_counter()\n{timed}\n"
            "print(time.perf_counter() - t0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))
