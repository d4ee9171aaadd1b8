"""RecordingKubectl: a stand-in for the kubectl binary, used by unit tests through RAG_K8S_KUBECTL.

It talks to no cluster. It appends its argv (without argv[0]) as one JSON line to the file named by
RECORDING_KUBECTL_LOG, then prints RECORDING_KUBECTL_STDOUT / RECORDING_KUBECTL_STDERR and exits
with RECORDING_KUBECTL_EXIT (default 0). RECORDING_KUBECTL_SLEEP makes it sleep first (timeouts).
"""

import json
import os
import sys
import time


def main() -> int:
    log = os.environ.get("RECORDING_KUBECTL_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(sys.argv[1:]) + "\n")
    delay = float(os.environ.get("RECORDING_KUBECTL_SLEEP", "0") or 0)
    if delay:
        time.sleep(delay)
    sys.stdout.write(os.environ.get("RECORDING_KUBECTL_STDOUT", ""))
    sys.stderr.write(os.environ.get("RECORDING_KUBECTL_STDERR", ""))
    return int(os.environ.get("RECORDING_KUBECTL_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
