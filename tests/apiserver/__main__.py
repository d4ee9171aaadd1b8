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

import yaml

from .server import DEFAULT_FIXTURES, StandIn

# What a real cluster makes or has itself: nodes, built-in namespaces, controller-owned objects,
# and the stand-in's own stall pod.
_SKIP_KINDS = {"Node", "ReplicaSet", "Event"}
_BUILTIN_NAMESPACES = {"default", "kube-system"}


def export_manifests(fixtures: dict) -> str:  # type: ignore[type-arg]
    """The fixture objects as a multi-document YAML a real cluster accepts."""
    docs = []
    for obj in fixtures.get("objects") or []:
        meta = obj.get("metadata", {})
        if obj.get("kind") in _SKIP_KINDS or meta.get("name", "").startswith("stall-"):
            continue
        if obj.get("kind") == "Namespace" and meta.get("name") in _BUILTIN_NAMESPACES:
            continue
        # A JSON round trip unshares the YAML anchors' objects: no aliases across documents.
        docs.append(json.loads(json.dumps({k: v for k, v in obj.items() if k != "status"})))
    return yaml.safe_dump_all(docs, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.apiserver",
                                     description="Local Kubernetes API stand-in (not a cluster).")
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--export-manifests", action="store_true",
                        help="print the fixtures as manifests for `kubectl apply -f -` on a real "
                             "(kind) cluster, and exit")
    args = parser.parse_args(argv)
    if args.export_manifests:
        print(export_manifests(yaml.safe_load(args.fixtures.read_text())), end="")
        return 0
    if args.workdir is None:
        parser.error("--workdir is required")

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
