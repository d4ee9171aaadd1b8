"""The query's embedding and scoring in a helper process, for a cold one-shot plain-words command.

Importing numpy and ONNX Runtime and creating the session hold the GIL for most of their
~130 ms. On a thread they only take turns with the CLI's own imports and card loading, so a
cold plain-words command paid for them in full. A worker process does that work on the other
core while the CLI starts: it loads the index's vectors and the embedder. The CLI then sends it
the one query, with the lexical bonus and the filters it worked out from the cards, and gets
back the ranked card positions. The CLI itself imports none of numpy, ONNX Runtime or
tokenizers.

The answer is the one this process would compute. The worker runs the same `_ranked` on the
same index with the same embedder options as a cold in-process load (`prepack=False`). It
answers only for the index the CLI checked against the cards: the same manifest, by stamp and
by the name of its content-addressed vectors file, and the same export, by stamp. Otherwise,
or when the worker is gone or fails, the CLI does the work itself, and that raises any error
in its usual words.

The protocol is JSON lines over the worker's stdin and stdout. The worker's first line is a
hello: what it loaded, or an error, or "the warm server answers instead". Then it answers
`rank` and `count` requests until its stdin closes.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .index import IndexHeader

# The commands that may embed free text once and exit.
COMMANDS = frozenset({"plan", "exec", "retrieve"})
# Far longer than any load measured under load here (~2 s). A worker silent for this long is
# stopped, and the CLI does the work itself.
REPLY_TIMEOUT = 60.0
ENV_SWITCH = "RAG_K8S_QUERY_WORKER"  # "0": never start one
# Embedded once the worker is ready when the CLI has not asked yet: the first inference in a
# process costs ~10 ms more than the next.
_WARM_UP = "restart the api deployment in prod"


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


class Worker:
    """The CLI's side of one worker process."""

    def __init__(self) -> None:
        # -P: the worker must not import modules from the user's working directory.
        flags = ["-P"] if sys.version_info >= (3, 11) else []
        self.proc = subprocess.Popen(
            [sys.executable, *flags, "-m", "rag_k8s.embed_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        self._lock = threading.Lock()
        self._hello: dict[str, Any] | None = None
        self._waited = False
        self.failed = False

    def hello(self) -> dict[str, Any] | None:
        """What the worker loaded, waited for; None when it failed, went or was stopped."""
        with self._lock:
            if not self._waited:
                from .progress import phase

                self._waited = True
                with phase("loading the embedding model"):
                    hello = self._read()
                if hello is not None and "index" in hello:
                    self._hello = hello
                elif hello is not None:  # an error, or the warm server: it exits by itself
                    self.failed = True
                else:  # silent too long, gone, or a torn line
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
                self.proc.stdin.write(json.dumps(message).encode() + b"\n")
                self.proc.stdin.flush()
            except OSError:
                self._stop()
                return None
            reply = self._read()
            if reply is None or "error" in reply:
                self._stop()
                return None
            return reply

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _read(self) -> dict[str, Any] | None:
        out = self.proc.stdout
        if out is None or not select.select([out], [], [], REPLY_TIMEOUT)[0]:
            return None
        try:
            reply = json.loads(out.readline())
        except ValueError:  # EOF (an empty line) or a torn one
            return None
        return reply if isinstance(reply, dict) else None

    def _stop(self) -> None:
        self.failed = True
        self._hello = None
        self._waited = True
        if self.proc.poll() is None:
            self.proc.kill()  # not waited for: the CLI exits soon, and init reaps it


_WORKER: Worker | None = None


def start(argv: list[str]) -> None:
    """Start a worker when `argv` is a one-shot command with free text (once per process)."""
    global _WORKER
    if _WORKER is not None or not wanted(argv):
        return
    try:
        _WORKER = Worker()
    except OSError:  # no process to spare: the CLI does the work itself
        return
    import atexit

    atexit.register(_WORKER.close)


def pending() -> bool:
    """Whether this process started a worker that has not failed."""
    return _WORKER is not None and not _WORKER.failed


def stop() -> None:
    """Stop the worker: this process does the work itself from now on."""
    if _WORKER is not None:
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

    hello = _WORKER.hello() if _WORKER is not None else None
    if hello is None:
        return None
    export = export_stamp(export_dir(header.path))
    if (hello["index"] != _identity(header.stamp, header.manifest)
            or export is None or hello["export"] != list(export)):
        stop()
        return None
    assert _WORKER is not None  # it said hello
    reply = _WORKER.call({"op": "rank", "text": text, "bonus": list(bonus.items()), "k": k,
                          "keep": keep, "index": hello["index"]})
    if reply is None:
        return None
    return [(float(score), int(pos)) for score, pos in reply["ranked"]]


def count_tokens(text: str) -> int | None:
    """`embed.token_count` by the worker (None without one): the CLI need not load tokenizers."""
    if _WORKER is None or _WORKER.failed:
        return None
    reply = _WORKER.call({"op": "count", "text": text})
    return None if reply is None else int(reply["count"])


def _identity(stamp: tuple[int, int, int], manifest: dict[str, Any]) -> list[Any]:
    """What says two processes read the same index: the manifest's stamp (each build renames a
    new one over it) and its content-addressed vectors file."""
    return [*stamp, manifest["files"]["vectors"]]


# ------------------------------------------------------------------------------ the worker itself


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    """`python -m rag_k8s.embed_worker`: load the index and the embedder of the settings (the
    CLI's environment and working directory), say hello, answer until stdin closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the whole group: go quietly
    from .config import Settings
    from .daemon import socket_path, use_socket

    try:
        settings = Settings.resolve()
        if use_socket() and socket_path(settings).exists():
            _send({"server": True})  # the CLI will ask the warm server, or do the work itself
            return
        from . import embed, saved_index
        from .retrieve import _ranked

        found = saved_index.loaded_with_stamp(settings)
        if found is None:
            _send({"error": "the index changed while it was read"})
            return
        stamp, loaded = found
        directory = embed.export_dir(settings.index_dir)
        export = embed.export_stamp(directory)
        embedder = embed.load_embedder(settings.index_dir, prepack=False)
        if export is None or embed.export_stamp(directory) != export:
            _send({"error": "the export changed while it was read"})
            return
        import onnxruntime

        _send({"index": _identity(stamp, loaded.manifest), "export": list(export),
               "ort": onnxruntime.__version__})
        if not select.select([sys.stdin], [], [], 0)[0]:
            # The CLI is still busy: make the first inference and the scoring layout now.
            _ranked(loaded, embedder.encode([_WARM_UP]), {}, 4, None)
    except Exception as e:  # noqa: BLE001 - any failure: the CLI does the work and reports it
        _send({"error": str(e)})
        return
    for line in sys.stdin:
        try:
            request = json.loads(line)
            if request.get("op") == "rank":
                if request.get("index") != _identity(stamp, loaded.manifest):
                    raise ValueError("another index")
                bonus = {int(pos): float(extra) for pos, extra in request["bonus"]}
                ranked = _ranked(loaded, embedder.encode([request["text"]]), bonus,
                                 int(request["k"]), request["keep"])
                _send({"ranked": ranked})
            elif request.get("op") == "count":
                _send({"count": embed.token_count(request["text"])})
            else:
                raise ValueError(f"unknown request {request.get('op')!r}")
        except Exception as e:  # noqa: BLE001 - the CLI does the work itself
            _send({"error": str(e)})


if __name__ == "__main__":
    main()
