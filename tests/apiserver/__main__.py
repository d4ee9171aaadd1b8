"""`python -m tests.apiserver --fixtures FILE --workdir DIR`: run the stand-in until stopped.

Test infrastructure: a LOCAL PRACTICE API, NOT A CLUSTER. Prints the URL and kubeconfig path and
writes them to DIR/standin.json once it is serving.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from .server import DEFAULT_FIXTURES, StandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.apiserver",
                                     description="Local Kubernetes API stand-in (not a cluster).")
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)

    standin = StandIn.start(args.fixtures, args.workdir, port=args.port)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    info = {"url": standin.url, "kubeconfig": str(standin.kubeconfig_path),
            "kubeconfig_dev_user": str(standin.kubeconfig_for("dev-user")), "pid": os.getpid()}
    (args.workdir / "standin.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"stand-in API (LOCAL PRACTICE API, NOT A CLUSTER) at {standin.url}", flush=True)
    print(f"KUBECONFIG={standin.kubeconfig_path}", flush=True)
    done.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
