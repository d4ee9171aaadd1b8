"""The `rag-k8s` console script: the CLI, then an exit without the interpreter's teardown;
a one-shot command runs without the cyclic garbage collector.

A head start on a thread (loading the embedder before the CLI's imports) was measured and
dropped: both are import work under one GIL, and the cold plain-words command came out the same.
A command with free text starts a query worker process instead (embed_worker).
"""

from __future__ import annotations

import sys


# Commands that answer once and exit. Only these run without the cyclic garbage collector:
# a server (serve, daemon, mcp) or a long job (eval, bench, build-index) keeps it.
ONE_SHOT = frozenset({"plan", "exec", "retrieve", "undo", "doctor", "audit"})


def one_shot(argv: list[str]) -> bool:
    """Whether `argv` (without the program name) is a one-shot command or a bare query."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first is not None and (first in ONE_SHOT or " " in first.strip())


def main() -> None:
    """Console-script entry point (`rag-k8s`)."""
    if one_shot(sys.argv[1:]):
        import gc

        # The collector's passes over the objects the imports make (numpy, ONNX Runtime, the
        # cards) cost ~35 ms of a cold plain-words command and ~10 ms with flags; the process
        # exits right after its one answer, so its few cycles are never worth collecting.
        gc.disable()
        from .embed_worker import start

        start(sys.argv[1:])  # free text: the embedder loads on the other core meanwhile
    from .cli import main as cli_main

    try:
        cli_main()
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:  # sys.exit("message"), as the interpreter would print it
            print(e.code, file=sys.stderr)
            code = 1
    _exit_without_teardown(code)


def _exit_without_teardown(code: int) -> None:
    """Exit once everything that matters is out, skipping the interpreter's teardown.

    Freeing ONNX Runtime, numpy and every module took 60-140 ms of each cold command. Nothing
    is lost by skipping it: the audit line is written with os.write before the result is
    printed, the exit handlers (the executor's, which stops any kubectl left) run here, and
    stdout and stderr are flushed. An exception other than SystemExit never gets here: it
    leaves the ordinary way, with its traceback.
    """
    import atexit
    import logging
    import os

    atexit._run_exitfuncs()  # noqa: SLF001 - what Py_Finalize would run first
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): the data had nowhere to go
            pass
    os._exit(code)
