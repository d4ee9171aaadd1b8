"""The saved index as files: its manifest and its vectors, read without the cards.

A query worker (embed_worker) loads the vectors from here without importing the card models
(~100 ms); `index` builds the files, checks them against the cards and re-exports these names.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .embed import file_stamp
from .errors import IndexError_

if TYPE_CHECKING:
    from .config import Settings

DIMENSION = 384
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def _read_manifest(index_dir: Path) -> dict[str, Any] | None:
    path = index_dir / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise IndexError_(
            f"{path}: unreadable index manifest ({e}); run `rag-k8s build-index --force`"
        ) from None
    if (
        not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT
        or not isinstance(data.get("card_ids"), list) or not isinstance(data.get("hashes"), dict)
        or not isinstance(data.get("files"), dict)
    ):
        raise IndexError_(
            f"{path}: not a rag-k8s index manifest of format {MANIFEST_FORMAT}; "
            "run `rag-k8s build-index --force`"
        )
    return data




@dataclass(frozen=True)
class LoadedIndex:
    """A saved index in memory. Row r of `vectors` (and of `faiss`) belongs to card
    `card_ids[row_card[r]]`; each card's first row embeds the whole card (see `card_texts`)."""

    card_ids: tuple[str, ...]
    row_card: Any  # numpy int64 array: row -> card position
    first_row: Any  # numpy int64 array: card position -> its first row
    vectors: Any  # numpy float32 array (rows, DIMENSION)
    manifest: dict[str, Any]
    path: Path

    @cached_property
    def faiss(self) -> Any:
        """The faiss.IndexFlatIP over the rows, read on first use: a small index is scored with
        numpy alone, so a cold query does not pay faiss's import (~0.4 s)."""
        import faiss

        path = self.path / self.manifest["files"]["index"]
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise IndexError_(
                f"{self.path}: cannot read the index ({e}); run `rag-k8s build-index --force`"
            ) from None
        if index.d != DIMENSION or index.ntotal != self.rows:
            raise IndexError_(
                f"{path}: {index.ntotal} rows of {index.d} dimensions, not the {self.rows} of "
                f"the saved vectors; run `rag-k8s build-index --force`"
            )
        return index

    @cached_property
    def whole_first(self) -> tuple[Any, Any] | None:
        """The rows reordered for an unfiltered exact scoring: every card's whole-card row
        first (card order), then the other rows card by card, and where each card's other rows
        start among them. None when a card has only its whole-card row.

        One product then gives the whole-card cosines as a slice and the best other row per
        card by one reduceat, instead of a dozen array passes (each costs ~10 µs once the
        embedding has flushed the caches)."""
        import numpy as np

        counts = np.diff(np.append(self.first_row, self.rows))
        if len(counts) == 0 or (counts < 2).any():
            return None
        others = np.setdiff1d(np.arange(self.rows, dtype=np.int64), self.first_row,
                              assume_unique=True)
        order = np.concatenate([self.first_row, others])
        starts = np.concatenate(([0], np.cumsum(counts - 1)[:-1])).astype(np.int64)
        return np.ascontiguousarray(self.vectors[order]), starts

    @property
    def hashes(self) -> dict[str, str]:
        return self.manifest["hashes"]  # type: ignore[no-any-return]

    @property
    def rows(self) -> int:
        return int(self.vectors.shape[0])

    def __len__(self) -> int:
        return len(self.card_ids)


_LOADED: dict[Path, tuple[tuple[int, int, int], LoadedIndex]] = {}
_LOAD_LOCK = threading.Lock()


def _manifest_mtime(index_dir: Path) -> tuple[int, int, int] | None:
    """The manifest's identity: each build renames a new file over it (new inode and mtime)."""
    return file_stamp(index_dir, MANIFEST)


def load_index(settings: Settings) -> LoadedIndex:
    """The saved index, cached per process until its manifest changes; raises IndexError_."""
    index_dir = settings.index_dir
    mtime = _manifest_mtime(index_dir)
    if mtime is None:
        raise IndexError_(f"no index in {index_dir}; run `rag-k8s build-index`")
    hit = _LOADED.get(index_dir)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    with _LOAD_LOCK:
        import numpy as np

        # A concurrent build may remove the files an older manifest names: re-read once.
        for attempt in (1, 2):
            manifest = _read_manifest(index_dir)
            if manifest is None:
                raise IndexError_(f"no index in {index_dir}; run `rag-k8s build-index`")
            try:
                (index_dir / manifest["files"]["index"]).stat()  # read when first searched
                vectors = np.load(index_dir / manifest["files"]["vectors"], allow_pickle=False)
                counts = np.asarray(manifest.get("row_counts", []), dtype=np.int64)
                break
            except (RuntimeError, OSError, ValueError, KeyError, TypeError) as e:
                if attempt == 2:
                    raise IndexError_(
                        f"{index_dir}: cannot read the index ({e}); run `rag-k8s build-index --force`"
                    ) from None
        card_ids = tuple(manifest["card_ids"])
        if (
            vectors.ndim != 2 or vectors.shape[1] != DIMENSION or len(counts) != len(card_ids)
            or (counts < 1).any() or vectors.shape[0] != int(counts.sum())
        ):
            raise IndexError_(
                f"{index_dir}: the index holds vectors of shape {vectors.shape}, which does not "
                f"fit the manifest's {len(card_ids)} cards; run `rag-k8s build-index --force`"
            )
        loaded = LoadedIndex(
            card_ids=card_ids,
            row_card=np.repeat(np.arange(len(card_ids), dtype=np.int64), counts),
            first_row=np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64),
            vectors=vectors, manifest=manifest, path=index_dir,
        )
        _LOADED[index_dir] = (mtime, loaded)  # stat taken before the read: a race only reloads
        return loaded


@dataclass(frozen=True)
class IndexHeader:
    """A saved index's manifest without its vectors: enough for `stale_reason`, in a process
    whose query worker holds the vectors (embed_worker), so it need not import numpy."""

    card_ids: tuple[str, ...]
    manifest: dict[str, Any]
    path: Path
    stamp: tuple[int, int, int]  # the manifest's, the same before and after the read

    @property
    def hashes(self) -> dict[str, str]:
        return self.manifest["hashes"]  # type: ignore[no-any-return]


def loaded_with_stamp(settings: Settings) -> tuple[tuple[int, int, int], LoadedIndex] | None:
    """`load_index`, with the manifest stamp it was read under when that stamp still holds
    after the read (None when a build replaced the manifest meanwhile)."""
    loaded = load_index(settings)
    hit = _LOADED.get(settings.index_dir)
    if hit is None or hit[1] is not loaded or _manifest_mtime(settings.index_dir) != hit[0]:
        return None
    return hit[0], loaded
