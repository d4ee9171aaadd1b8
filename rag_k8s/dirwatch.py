"""Whether anything in a watched directory changed since it was last armed, without a stat per file.

A warm request checks that the cards it plans from are still the files on disk. Stat-ing every
card costs ~0.5 ms for 165 cards, an eighth of the query embedding itself. On Linux one inotify
descriptor per process answers instead, in one non-blocking read: the kernel queues an event
inside the write, rename or unlink itself, so a change made before a call is seen by that call.

Where inotify is missing (macOS, a kernel out of watches, a directory holding symlinks whose
targets it cannot see) `unchanged()` answers False and the caller compares signatures as before.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from pathlib import Path

log = logging.getLogger(__name__)

try:  # Linux only (an environment marker in pyproject.toml)
    import inotify_simple
except ImportError:  # pragma: no cover - macOS and other systems
    inotify_simple = None

# Every way a file in the directory can come to differ: written, truncated, touched, created,
# removed or renamed in or out; and the directory itself removed or moved.
_MASK = 0
if inotify_simple is not None:
    _f = inotify_simple.flags
    _MASK = (_f.MODIFY | _f.ATTRIB | _f.CLOSE_WRITE | _f.CREATE | _f.DELETE | _f.MOVED_FROM
             | _f.MOVED_TO | _f.DELETE_SELF | _f.MOVE_SELF)


# Bytes per read: room for a few thousand events (a fuller queue takes more reads).
_READ_SIZE = 1 << 16


class DirWatch:
    """Directories armed once, then answered `unchanged()` until an event arrives for them.

    `unchanged()` says "nothing since the last arm", and anyone may arm again after reading.
    A caller that holds what it read across calls asks `snapshot()` instead: a count of every
    event per directory, which no arm resets, so another reader's re-arm cannot vouch for it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inotify: inotify_simple.INotify | None = None  # type: ignore[name-defined]
        self._poll: select.poll | None = None
        self._dirs: dict[int, Path] = {}  # watch descriptor -> directory
        self._clean: set[Path] = set()  # armed and not changed since
        self._events: dict[Path, int] = {}  # events (and forgets) seen per directory, ever
        self._epoch = 0  # raised whenever events may have been lost: every count is void
        self._changes = 0  # every event and forget, in any directory: see generation()
        self.disabled = inotify_simple is None

    def _open(self) -> inotify_simple.INotify | None:  # type: ignore[name-defined]
        if self.disabled:
            return None
        if self._inotify is None:
            try:
                self._inotify = inotify_simple.INotify(nonblocking=True)
                self._poll = select.poll()  # kept: asking it costs a third of a read
                self._poll.register(self._inotify.fileno(), select.POLLIN)
            except OSError as e:  # EMFILE: the user's inotify instances are used up
                log.debug("no inotify (%s); card files are compared by stat", e)
                self.disabled = True
                return None
            self._dirs.clear()
            self._clean.clear()
            self._epoch += 1
        return self._inotify

    def _after_fork(self) -> None:
        """A forked child shares the parent's descriptor and would drain its events: it opens
        its own on first use and trusts nothing it inherited."""
        self._lock = threading.Lock()
        if self._inotify is not None:
            try:
                self._inotify.close()  # the child's copy of the parent's descriptor
            except OSError:
                pass
        self._inotify = None
        self._dirs.clear()
        self._clean.clear()
        self._epoch += 1

    def _drain(self, ino: inotify_simple.INotify) -> None:  # type: ignore[name-defined]
        # With no event, one poll; else reads until the descriptor is empty (BlockingIOError).
        if not self._poll.poll(0):
            return
        events: list | None = []
        while True:
            try:
                data = os.read(ino.fileno(), _READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                events = None
                break
            if not data:
                break
            events.extend(inotify_simple.parse_events(data))
        if events is None:  # an unreadable queue: trust nothing
            self._clean.clear()
            self._epoch += 1
            return
        for ev in events:
            if ev.wd == -1:  # the queue overflowed: events were lost
                self._clean.clear()
                self._epoch += 1
                continue
            self._changes += 1
            where = self._dirs.get(ev.wd)
            if where is not None:
                self._clean.discard(where)
                self._events[where] = self._events.get(where, 0) + 1
            if ev.mask & inotify_simple.flags.IGNORED:  # the watch is gone (directory removed)
                self._dirs.pop(ev.wd, None)

    def generation(self) -> tuple[int, int] | None:
        """A token for every watched directory at once (one poll): it stays equal while no
        event arrives for any of them and none is forgotten. Cheaper than `snapshot()` (no
        per-directory lookups), at the price of answering "changed" for a change elsewhere.
        Valid only alongside a `snapshot()` that was not None, taken at the same moment."""
        with self._lock:
            ino = self._open()
            if ino is None:
                return None
            self._drain(ino)
            return (self._epoch, self._changes)

    def unchanged(self, directory: Path) -> bool:
        """True when `directory` was armed and nothing in it changed since."""
        return self.snapshot((directory,)) is not None

    def snapshot(self, directories: tuple[Path, ...]) -> tuple[int, ...] | None:
        """A token that stays equal while no event arrives for any of `directories` (one poll);
        None when one of them is not armed and unchanged. Take it after arming and before
        reading, and again after: equal tokens mean nothing changed in between."""
        with self._lock:
            ino = self._open()
            if ino is None or not directories:
                return None
            self._drain(ino)
            if not self._clean.issuperset(directories):
                return None
            return (self._epoch, *(self._events.get(d, 0) for d in directories))

    def arm(self, directory: Path) -> bool:
        """Watch `directory` from now on; call it *before* reading what it holds, so a change
        made during the read is an event. False when it cannot be watched (the caller then
        keeps comparing signatures)."""
        with self._lock:
            ino = self._open()
            if ino is None:
                return False
            self._drain(ino)
            try:
                wd = ino.add_watch(str(directory), _MASK | inotify_simple.flags.ONLYDIR)
            except OSError as e:  # ENOSPC: out of watches; ENOENT: gone
                log.debug("cannot watch %s (%s)", directory, e)
                return False
            self._dirs[wd] = directory
            self._clean.add(directory)
            return True

    def forget(self, directory: Path) -> None:
        """Stop answering for `directory` (it holds something inotify cannot follow)."""
        with self._lock:
            self._clean.discard(directory)
            self._events[directory] = self._events.get(directory, 0) + 1
            self._changes += 1


WATCH = DirWatch()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WATCH._after_fork)
