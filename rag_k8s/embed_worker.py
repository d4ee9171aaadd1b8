"""The query's embedding and scoring in a helper process, for a cold one-shot plain-words command.

Importing numpy and ONNX Runtime and creating the session hold the GIL for most of their
~150 ms. On a thread they only take turns with the CLI's own imports and card loading, so a
cold plain-words command paid for them in full. A worker process does that work on the other
core while the CLI starts: it loads the index's vectors and the embedder. The CLI then sends it
the one query, with the lexical bonus and the filters it worked out from the cards, and gets
back the ranked card positions. The CLI itself then imports none of numpy, ONNX Runtime or
tokenizers (unless a snippet must be cut to the token budget).

The answer is the one the CLI would compute alone: the worker runs the very code the CLI runs
(the same `rag_k8s` package, checked by path and version), the same `_ranked`, on the same
index, with the embedder loaded as every process loads it. It answers only for the index the
CLI checked against the cards: the same manifest, by its stamp and content, and the same
export, by stamp. Otherwise, or when the worker is gone, silent or says anything unexpected,
the CLI does the work itself, and that raises any error in its usual words.

The protocol is JSON lines over the worker's stdin and stdout. The worker's first line is a
hello: what it loaded, or an error, or "the warm server answers instead". Then it answers
`rank` and `count` requests until its stdin closes. The CLI stops it once the plan is made.
"""

from __future__ import annotations

import json
import logging
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

    from .index import IndexHeader

log = logging.getLogger(__name__)

# The commands that may embed free text once and exit.
COMMANDS = frozenset({"plan", "exec", "retrieve"})
# Far longer than any load measured under load here (~2 s). A worker silent for this long is
# stopped, and the CLI does the work itself.
REPLY_TIMEOUT = 60.0
ENV_SWITCH = "RAG_K8S_QUERY_WORKER"  # "0": never start one
# Embedded once the worker is ready when the CLI has not asked yet: the first inference in a
# process costs ~10 ms more than the next.
_WARM_UP = "restart the api deployment in prod"
# The worker's sys.path[0] is this package's folder, not the working directory: it must run
# the CLI's own code, and never a numpy.py or rag_k8s/ that happens to sit where the user is.
_BOOT = "import sys; sys.path[0] = sys.argv[1]; from rag_k8s.embed_worker import main; main()"


def wanted(argv: list[str]) -> bool:
    """Whether `argv` (without the program name) looks like a one-shot command with free text:
    `plan`, `exec` or `retrieve` with an argument of several words, or a bare query. A wrong
    guess costs only an idle process; the answer does not depend on it."""
    if os.environ.get(ENV_SWITCH, "") in ("0", "false", "no"):
        return False
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return False
    if " " in words[0].strip():
        return True  # `rag-k8s "restart the api deployment"`
    rest = argv[argv.index(words[0]) + 1:]
    return words[0] in COMMANDS and any(" " in a.strip() for a in rest)


def _package() -> list[str]:
    """What says two processes run the same rag-k8s: its package folder and version."""
    from . import __version__

    return [str(Path(__file__).resolve().parent), __version__]


def worker_argv() -> list[str]:
    """The worker's command line: this interpreter, this package."""
    return [sys.executable, "-c", _BOOT, str(Path(__file__).resolve().parent.parent)]


class Worker:
    """The CLI's side of one worker process.

    `argv` replaces the worker's command line (tests use stand-ins that misbehave)."""

    def __init__(self, argv: list[str] | None = None) -> None:
        import subprocess

        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            argv or worker_argv(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, close_fds=True)
        self._lock = threading.Lock()
        self._buffer = b""
        self._hello: dict[str, Any] | None = None
        self._waited = False
        self.failed = False

    def hello(self) -> dict[str, Any] | None:
        """What the worker loaded, waited for; None when it failed, went or was stopped."""
        with self._lock:
            if not self._waited:
                from .progress import phase

                try:
                    with phase("loading the embedding model"):
                        hello = self._read()
                except BaseException:  # Ctrl-C: no half-read hello to trust later
                    self._stop()
                    raise
                self._waited = True
                if hello is not None and "index" in hello and hello.get("package") == _package():
                    self._hello = hello
                else:
                    log.info("query worker not used: %s",
                             "no answer" if hello is None else hello)
                    self._stop()
            return self._hello

    def call(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """One request and its answer; None (and the worker stopped) when it cannot answer."""
        if self.hello() is None:
            return None
        with self._lock:
            if self.failed or self.proc.stdin is None:
                return None
            try:
                data = memoryview(json.dumps(message).encode() + b"\n")
                while data:  # an unbuffered pipe may take a long line in parts
                    data = data[self.proc.stdin.write(data) or 0:]
                reply = self._read()
            except OSError:
                reply = None
            except BaseException:  # an answer left unread would pair with the next question
                self._stop()
                raise
            if reply is None or "error" in reply:
                log.info("query worker stopped: %s", reply or "no answer")
                self._stop()
                return None
            return reply

    def close(self) -> None:
        with self._lock:
            self._stop()

    def kill(self) -> None:
        """At exit: no lock (a thread may hold it in a read), no wait."""
        self.failed = True
        if self.proc.poll() is None:  # (a worker already gone is reaped here)
            self.proc.kill()

    def _read(self) -> dict[str, Any] | None:
        """The next line, within REPLY_TIMEOUT however it arrives (in pieces, or with another
        line after it); None on a timeout, at the end of the pipe, or for a line not JSON."""
        out = self.proc.stdout
        if out is None:
            return None
        fd = out.fileno()
        deadline = time.monotonic() + REPLY_TIMEOUT
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    def _stop(self) -> None:
        self.failed = True
        self._hello = None
        self._waited = True
        if self.proc.poll() is None:
            # Not waited for: tearing down its ~100 MB takes the kernel ~10 ms, which the command
            # need not wait out. Reaped at exit, if not by then by init.
            self.proc.kill()


_WORKER: Worker | None = None


def start(argv: list[str]) -> None:
    """Start a worker when `argv` is a one-shot command with free text (once per process)."""
    global _WORKER
    if _WORKER is not None or not wanted(argv):
        return
    try:
        _WORKER = Worker()
    except OSError as e:  # no process to spare: the CLI does the work itself
        log.info("no query worker (%s)", e)
        return
    import atexit

    atexit.register(_WORKER.kill)


def pending() -> bool:
    """Whether this process started a worker that has not failed or been stopped."""
    return _WORKER is not None and not _WORKER.failed


def stop() -> None:
    """Stop the worker: this process does any further work itself."""
    if _WORKER is not None and not _WORKER.failed:
        _WORKER.close()


def ort_version() -> str | None:
    """ONNX Runtime's version as the worker imported it (None without a worker): the CLI then
    need not import ONNX Runtime (~25 ms) only to compare versions."""
    hello = _WORKER.hello() if _WORKER is not None else None
    return str(hello["ort"]) if hello else None


def rank(header: IndexHeader, text: str, bonus: dict[int, float], k: int,
         keep: list[int] | None) -> list[tuple[float, int]] | None:
    """`retrieve._ranked` for `text`, run by the worker on the index `header` names; None (and
    the worker stopped) when it holds another index or export, or cannot answer."""
    from .embed import export_dir, export_stamp

    worker = _WORKER
    hello = worker.hello() if worker is not None else None
    if worker is None or hello is None:
        return None
    identity = index_identity(header.stamp, header.manifest)
    export = export_stamp(export_dir(header.path))
    if hello["index"] != identity or export is None or hello["export"] != list(export):
        log.info("query worker not used: it holds another index or export")
        worker.close()
        return None
    reply = worker.call({"op": "rank", "text": text, "bonus": list(bonus.items()), "k": k,
                         "keep": keep, "index": identity})
    try:
        return [(float(score), int(pos)) for score, pos in reply["ranked"]] if reply else None
    except (KeyError, TypeError, ValueError):
        worker.close()
        return None


def count_tokens(text: str) -> int | None:
    """`embed.token_count` by the worker (None without one): the CLI need not load tokenizers."""
    worker = _WORKER
    if worker is None or worker.failed:
        return None
    reply = worker.call({"op": "count", "text": text})
    try:
        return int(reply["count"]) if reply else None
    except (KeyError, TypeError, ValueError):
        worker.close()
        return None


def index_identity(stamp: tuple[int, int, int], manifest: dict[str, Any]) -> list[Any]:
    """What says two processes read the same index: the manifest's stamp (each build renames a
    new file over it), its build time and the vectors file it names."""
    return [*stamp, manifest.get("built_at"), manifest["files"]["vectors"]]


# ------------------------------------------------------------------------------ the worker itself


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _server_answers(settings: Any) -> bool:
    """Whether the warm server would serve this command (a ping with the CLI's fingerprint):
    then the CLI asks it, and a worker would only take its core."""
    from .daemon import ServerGone, request, use_socket

    if not use_socket():
        return False
    try:
        request(settings, "ping", side_effects=False)
    except ServerGone:
        return False
    except Exception:  # noqa: BLE001 - a server that errs on a ping will not serve the CLI
        return False
    return True


def main() -> None:
    """The worker: load the index and the embedder of the settings (the CLI's environment and
    working directory), say hello, answer until stdin closes."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the group: go quietly
    from .config import Settings

    try:
        settings = Settings.resolve()
        if _server_answers(settings):
            _send({"server": True})
            return
        import onnxruntime

        from . import embed, saved_index
        from .retrieve import _ranked

        found = saved_index.loaded_with_stamp(settings)
        if found is None:
            _send({"error": "the index changed while it was read"})
            return
        stamp, loaded = found
        directory = embed.export_dir(settings.index_dir)
        export = embed.export_stamp(directory)
        embedder = embed.load_embedder(settings.index_dir)
        if export is None or embed.export_stamp(directory) != export:
            _send({"error": "the export changed while it was read"})
            return
        identity = index_identity(stamp, loaded.manifest)
        _send({"index": identity, "export": list(export), "ort": onnxruntime.__version__,
               "package": _package()})
        if not select.select([sys.stdin], [], [], 0)[0]:
            # The CLI is still busy: make the first inference and the scoring layout now.
            _ranked(loaded, embedder.encode([_WARM_UP]), {}, 4, None)
    except Exception as e:  # noqa: BLE001 - any failure: the CLI does the work and reports it
        _send({"error": str(e)})
        return
    for line in sys.stdin:
        try:
            message = json.loads(line)
            if message.get("op") == "rank":
                if message.get("index") != identity:
                    raise ValueError("asked about another index")
                bonus = {int(pos): float(extra) for pos, extra in message["bonus"]}
                ranked = _ranked(loaded, embedder.encode([message["text"]]), bonus,
                                 int(message["k"]), message["keep"])
                _send({"ranked": ranked})
            elif message.get("op") == "count":
                _send({"count": embed.token_count(message["text"])})
            else:
                raise ValueError(f"unknown request {message.get('op')!r}")
        except Exception as e:  # noqa: BLE001 - the CLI does the work itself
            _send({"error": str(e)})
