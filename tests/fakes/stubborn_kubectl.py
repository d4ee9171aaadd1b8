"""StubbornKubectl: a stand-in for the kubectl binary that resists being stopped.

It talks to no cluster. It ignores SIGTERM, forks a child that ignores SIGTERM too and sleeps,
writes "LEADER_PID CHILD_PID" to the file named by STUBBORN_KUBECTL_PIDFILE (once both exist),
prints "started" and then:
- STUBBORN_KUBECTL_MODE=hang (default): sleeps for 600 s (a kubectl that never ends);
- STUBBORN_KUBECTL_MODE=leave: exits 0 at once, leaving its child behind (a kubectl that exits
  but leaves a process running).
STUBBORN_KUBECTL_SETSID=1 makes the child call setsid() first, leaving kubectl's process group
and session (what a daemonising helper does), so killing the group alone misses it.
"""

import os
import signal
import sys
import time


def main() -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:
        if os.environ.get("STUBBORN_KUBECTL_SETSID") == "1":
            os.setsid()
        os.write(ready_w, b"x")
        time.sleep(600)
        os._exit(0)
    os.read(ready_r, 1)  # the child is set up (setsid done) before anyone is told it exists
    pidfile = os.environ["STUBBORN_KUBECTL_PIDFILE"]
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child}")
    os.replace(pidfile + ".tmp", pidfile)
    print("started", flush=True)
    if os.environ.get("STUBBORN_KUBECTL_MODE", "hang") == "leave":
        return 0
    time.sleep(600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
