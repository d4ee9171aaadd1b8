"""Show the wait: a Rich spinner on stderr, only on a terminal, naming what the process waits on.

Library code announces a slow phase with `phase("loading the embedding model")`; it costs nothing
when no spinner listens (every door but the CLI). The CLI wraps a call in `spinner(...)`, which
appears only when the call takes longer than `delay` seconds, so a fast answer prints no spinner.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_ACTIVE: _Spinner | None = None


class _Spinner:
    def __init__(self, console: Any, text: str, delay: float) -> None:
        self.console = console
        self.default = text
        self.text = text
        self.status: Any = None
        self.stopped = False
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self._schedule(delay)

    def _schedule(self, delay: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = threading.Timer(delay, self._show)
        self.timer.daemon = True
        self.timer.start()

    def _show(self) -> None:
        with self.lock:
            if self.stopped or self.status is not None:
                return
            self.status = self.console.status(self.text, spinner="dots")
            self.status.start()

    def update(self, text: str | None, delay: float | None) -> None:
        with self.lock:
            self.text = text or self.default
            if self.status is not None:
                self.status.update(self.text)
            elif delay is not None and not self.stopped:
                self._schedule(delay)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            if self.timer is not None:
                self.timer.cancel()
            if self.status is not None:
                self.status.stop()
                self.status = None


@contextmanager
def phase(text: str, *, delay: float | None = None) -> Iterator[None]:
    """Name what the process waits on while the block runs (for the CLI's spinner, if any).

    `delay`: show the spinner no sooner than this many seconds from now when it is not showing yet
    (kubectl: only once it has run longer than a second).
    """
    spinner_ = _ACTIVE
    if spinner_ is None:
        yield
        return
    before = spinner_.text
    spinner_.update(text, delay)
    try:
        yield
    finally:
        spinner_.update(before, None)


@contextmanager
def spinner(text: str, *, console: Any = None, delay: float = 0.3) -> Iterator[None]:
    """A transient spinner on stderr while the block runs, shown after `delay` seconds; nothing
    at all when stderr is not a terminal (pipes, files, tests)."""
    global _ACTIVE
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    if not console.is_terminal or _ACTIVE is not None:
        yield
        return
    _ACTIVE = _Spinner(console, text, delay)
    try:
        yield
    finally:
        active, _ACTIVE = _ACTIVE, None
        active.stop()
