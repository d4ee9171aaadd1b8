"""Retrieval: the 2-4 command cards nearest a request, as short snippets for the planner."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import InvalidRequest
from .vocab import INTENTS, normalize_resource

if TYPE_CHECKING:
    import numpy as np

    from .cards import Corpus
    from .index import LoadedIndex
    from .request import Request

MIN_HITS = 2
MAX_HITS = 4
SNIPPET_BUDGET = 1200  # tokens, for all snippets together (counted with the embedder's tokenizer)
_EXTRA = 8  # candidates fetched beyond k, so ties at the cut are broken by card id, not by FAISS


@dataclass(frozen=True)
class Hit:
    card_id: str
    score: float
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrieve(
    query: str,
    intent: str | None = None,
    resource: str | None = None,
    k: int = 4,
    *,
    settings: Settings | None = None,
) -> list[Hit]:
    """The best 2-4 cards for `query`, filtered by intent and resource when given.

    Scores are inner products of normalised embeddings (cosine); ties break by card id.
    The snippets together stay within 1,200 tokens.

    Args:
        query: free text; when blank, "intent resource" is embedded instead.
        intent: keep only cards of this intent (CONTRACT §3).
        resource: keep only cards of this kind (aliases accepted) or of any kind (`*`).
        k: how many hits, 2 to 4. When the filters leave fewer than 2 cards, the nearest other
            cards pad the list to 2; the planner re-checks each card's fit.
        settings: defaults to `Settings.resolve()`.
    """
    from .index import embed, ensure_index

    if isinstance(k, bool) or not isinstance(k, int) or not MIN_HITS <= k <= MAX_HITS:
        raise InvalidRequest("k", f"must be an integer from {MIN_HITS} to {MAX_HITS}, got {k!r}")
    if intent is not None and intent not in INTENTS:
        raise InvalidRequest("intent", f"{intent!r} is not one of: {', '.join(INTENTS)}")
    kind: str | None = None
    if resource is not None and resource.strip() not in ("", "*"):
        kind = normalize_resource(resource)
        if kind is None:
            raise InvalidRequest("resource", f"{resource!r} is not a Kubernetes kind rag-k8s knows")
    text = (query or "").strip()[:2000] or " ".join(x for x in (intent, kind) if x)
    if not text:
        raise InvalidRequest("query", "is blank; give a query, an intent or a resource")

    settings = settings or Settings.resolve()
    loaded, corpus = ensure_index(settings)
    qvec = embed([text])

    rows: list[int] | None = None
    if intent is not None or kind is not None:
        rows = _filter_rows(loaded, corpus, intent, kind)
    ranked = _ranked(loaded, corpus, qvec, k, rows)
    if len(ranked) < min(MIN_HITS, len(loaded)):
        taken = {row for _, row in ranked}
        others = [p for p in _ranked(loaded, corpus, qvec, MIN_HITS + len(taken), None)
                  if p[1] not in taken]
        ranked += others[:MIN_HITS - len(ranked)]
    hits = [Hit(loaded.card_ids[row], score, corpus.cards[row].snippet()) for score, row in ranked]
    return _within_budget(hits)


def retrieve_request(
    request: Request, k: int = 4, *, settings: Settings | None = None
) -> list[Hit]:
    """`retrieve` for a parsed request: its query (else intent, resource and name), its filters."""
    text = request.query or " ".join(
        x for x in (request.intent, request.resource, request.name) if x
    )
    return retrieve(text, request.intent, request.resource, k, settings=settings)


# ------------------------------------------------------------------------------------- internals

# (id of a loaded index, intent, kind) -> its rows that pass the filters.
_ROWS: dict[tuple[int, str | None, str | None], tuple[LoadedIndex, list[int]]] = {}


def _filter_rows(
    loaded: LoadedIndex, corpus: Corpus, intent: str | None, kind: str | None
) -> list[int]:
    key = (id(loaded), intent, kind)
    hit = _ROWS.get(key)
    if hit is not None and hit[0] is loaded:
        return hit[1]
    keep = {c.id for c in corpus.matching(intent, kind)}
    rows = [i for i, cid in enumerate(loaded.card_ids) if cid in keep]
    if len(_ROWS) > 512:
        _ROWS.clear()
    _ROWS[key] = (loaded, rows)
    return rows


def _search(loaded: LoadedIndex, qvec: np.ndarray, n: int, rows: list[int] | None
            ) -> list[tuple[float, int]]:
    import faiss
    import numpy as np

    params = None
    if rows is not None:
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(rows, dtype="int64")))
    scores, ids = loaded.faiss.search(qvec, n, params=params)
    return [(round(float(s), 4), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]


def _ranked(loaded: LoadedIndex, corpus: Corpus, qvec: np.ndarray, k: int,
            rows: list[int] | None) -> list[tuple[float, int]]:
    """The best k (score, row) pairs, by score then card id; ties at the cut are fetched whole."""
    total = len(loaded) if rows is None else len(rows)
    if total == 0 or k <= 0:
        return []
    fetch = min(total, k + _EXTRA)
    while True:
        pairs = _search(loaded, qvec, fetch, rows)
        # FAISS orders equal scores arbitrarily: widen until the k-th score is clear of the last.
        if fetch >= total or len(pairs) <= k or pairs[-1][0] < pairs[k - 1][0]:
            break
        fetch = min(total, fetch * 2)
    pairs.sort(key=lambda p: (-p[0], loaded.card_ids[p[1]]))
    return pairs[:k]


_TOKENS: dict[str, int] = {}


def count_tokens(text: str) -> int:
    """Tokens in `text` by the embedder's own tokenizer (no special tokens)."""
    n = _TOKENS.get(text)
    if n is None:
        from .index import embedder

        n = len(embedder().tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(_TOKENS) > 4096:
            _TOKENS.clear()
        _TOKENS[text] = n
    return n


def _truncate(text: str, max_tokens: int) -> str:
    from .index import embedder

    enc = embedder().tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= max_tokens:
        return text
    return text[:offsets[max_tokens - 1][1]].rstrip() + " ..."


def _within_budget(hits: list[Hit], budget: int = SNIPPET_BUDGET) -> list[Hit]:
    """Drop the lowest hits until the snippets fit `budget` tokens (keeping one), then truncate."""
    while len(hits) > 1 and sum(count_tokens(h.snippet) for h in hits) > budget:
        hits = hits[:-1]
    if hits and count_tokens(hits[0].snippet) > budget:
        # " ..." adds a token or two: leave room for them.
        snippet = _truncate(hits[0].snippet, budget - 4)
        hits = [Hit(hits[0].card_id, hits[0].score, snippet)]
    return hits
