"""Retrieval: the 2-4 command cards nearest a request, as short snippets for the planner."""

from __future__ import annotations

import heapq
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import embed_worker
from .config import Settings
from .errors import InvalidRequest
from .vocab import INTENTS, normalize_resource

if TYPE_CHECKING:
    import numpy as np

    from .cards import Corpus
    from .index import IndexHeader, LoadedIndex
    from .request import Request

MIN_HITS = 2
MAX_HITS = 4
SNIPPET_BUDGET = 1200  # tokens, for all snippets together (counted with the embedder's tokenizer)
KIND_BONUS = 0.05  # the query names the card's kind
KEYWORD_BONUS = 0.05  # the query holds one of the card's keywords (or its intent's name)
# Free text with no recognisable intent must be at least this close to a card to be planned.
MIN_FREE_TEXT_SCORE = 0.35
EXACT_ROWS = 4096  # up to this many index rows, every row is scored
CANDIDATE_ROWS = 512  # above it, the rows FAISS returns pick the cards to score exactly


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
    """The best 2-4 cards for `query` (fewer only when fewer fit the filters), filtered by
    intent and resource when given.

    A card's score is the mean of two cosines (query vs the whole card, query vs its nearest
    example or keyword) plus a small bonus when the query names the card's kind or one of its
    keywords; scores are rounded to 4 places and ties break by card id.
    The snippets together stay within 1,200 tokens.

    Args:
        query: free text; when blank, "intent resource" is embedded instead.
        intent: keep only cards of this intent (CONTRACT §3).
        resource: keep only cards of this kind (aliases accepted) or of any kind (`*`).
        k: how many hits, 2 to 4. When the filters leave fewer cards, only those come back
            (one, for `restart` of a `deployment`), never a card that does not fit.
        settings: defaults to `Settings.resolve()`.
    """
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
    corpus, card_ids, ranked = (_ranked_by_worker(settings, text, intent, kind, k)
                                or _ranked_here(settings, text, intent, kind, k))
    hits = [Hit(card_ids[pos], score, corpus.snippets[pos]) for score, pos in ranked]
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

_Ranked = tuple["Corpus", tuple[str, ...], list[tuple[float, int]]]


def _ranked_here(settings: Settings, text: str, intent: str | None, kind: str | None,
                 k: int) -> _Ranked:
    """The best k (score, card position) for `text`, embedded and scored in this process."""
    from .index import query_state

    state = query_state(settings)
    loaded, corpus = state.loaded, state.corpus
    qvec = state.embedder.encode([text])
    bonus, keep = _bonus_and_keep(loaded, corpus, text, intent, kind)
    return corpus, loaded.card_ids, _ranked(loaded, qvec, bonus, k, keep)


def _ranked_by_worker(settings: Settings, text: str, intent: str | None, kind: str | None,
                      k: int) -> _Ranked | None:
    """The same, scored by this process's query worker (a cold one-shot CLI command; see
    embed_worker), which runs `_ranked` on the same index; None without a worker, or when the
    index is stale or the worker cannot answer for this very index."""
    if not embed_worker.pending():
        return None
    from .index import fresh_header

    found = fresh_header(settings)
    if found is None:
        embed_worker.stop()  # the slow way loads (or rebuilds) in this process
        return None
    header, corpus = found
    bonus, keep = _bonus_and_keep(header, corpus, text, intent, kind)
    ranked = embed_worker.rank(header, text, bonus, k, keep)
    return None if ranked is None else (corpus, header.card_ids, ranked)


def _bonus_and_keep(loaded: LoadedIndex | IndexHeader, corpus: Corpus, text: str,
                    intent: str | None, kind: str | None
                    ) -> tuple[dict[int, float], list[int] | None]:
    """What the cards say of `text` before any scoring: the lexical bonus, and the positions
    the filters keep (None: no filter). Filters are strict: a card of another intent or kind is
    never offered to the planner."""
    keep = None if intent is None and kind is None else _filter_cards(loaded, corpus, intent, kind)
    return _lexical_bonus(corpus, text), keep


# (id of a loaded index, intent, kind) -> the card positions that pass the filters.
_KEEP: dict[tuple[int, str | None, str | None], tuple[Any, list[int]]] = {}


def _filter_cards(
    loaded: LoadedIndex | IndexHeader, corpus: Corpus, intent: str | None, kind: str | None
) -> list[int]:
    key = (id(loaded), intent, kind)
    hit = _KEEP.get(key)
    if hit is not None and hit[0] is loaded:
        return hit[1]
    fits = {c.id for c in corpus.matching(intent, kind)}
    keep = [i for i, cid in enumerate(loaded.card_ids) if cid in fits]
    if len(_KEEP) > 512:
        _KEEP.clear()
    _KEEP[key] = (loaded, keep)
    return keep


def _card_rows(loaded: LoadedIndex, cards: Any) -> np.ndarray:
    """Every index row of the given card positions."""
    import numpy as np

    cards = np.asarray(cards, dtype=np.int64)
    ends = np.append(loaded.first_row[1:], loaded.rows)
    return np.concatenate([np.arange(loaded.first_row[c], ends[c]) for c in cards]) \
        if len(cards) else np.zeros(0, dtype=np.int64)


def _ranked(loaded: LoadedIndex, qvec: np.ndarray, bonus: dict[int, float], k: int,
            keep: list[int] | None) -> list[tuple[float, int]]:
    """The best k (score, card position) pairs, by score then card id.

    A card scores the mean of its whole-card cosine and its best other row's cosine, plus the
    lexical bonus. Up to EXACT_ROWS rows every row is scored; above that FAISS picks the
    CANDIDATE_ROWS nearest rows and their cards are scored exactly.
    """
    import numpy as np

    if k <= 0 or loaded.rows == 0 or (keep is not None and not keep):
        return []
    layout = loaded.whole_first if keep is None and loaded.rows <= EXACT_ROWS else None
    if layout is not None:  # every card, every row: one product, one reduceat
        vectors, starts = layout
        scores = vectors @ qvec[0]
        n = len(loaded.card_ids)
        best = np.maximum.reduceat(scores[n:], starts)
        best += scores[:n]  # twice the mean, in float32 as _best_k takes it
        doubled = best.tolist()
        for pos, extra in bonus.items():  # positions are card positions here
            doubled[pos] += 2 * extra
        return _top_k(loaded, None, doubled, k)
    rows = None if keep is None else _card_rows(loaded, keep)
    total = loaded.rows if rows is None else len(rows)
    if total <= EXACT_ROWS:
        # Every row is scored: numpy's product is what IndexFlatIP computes, without faiss.
        if rows is None:  # all rows: no gather copy of the vectors, no scatter either
            row_ids = None
            row_scores = loaded.vectors @ qvec[0]
            cands = np.arange(len(loaded.card_ids), dtype=np.int64)
        else:
            row_ids = rows
            row_scores = loaded.vectors[row_ids] @ qvec[0]
            # The kept positions (ascending, each with at least one row): not np.unique, whose
            # first call imports numpy.ma (~9 ms of a cold plain-words command).
            cands = np.asarray(keep, dtype=np.int64)
    else:
        import faiss

        # One query is too small to share out: on OpenMP threads a search over 20,000 rows took
        # 3 ms idle and 14 under load, on one 1.4 ms. The setting is per calling thread.
        faiss.omp_set_num_threads(1)
        params = None
        if rows is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows))
        _, ids = loaded.faiss.search(qvec, CANDIDATE_ROWS, params=params)
        cands = np.unique(loaded.row_card[ids[0][ids[0] >= 0]])
        if bonus:  # a card the words name is a candidate too
            extra = [c for c in bonus if keep is None or c in set(keep)]
            cands = np.unique(np.concatenate([cands, np.asarray(extra, dtype=np.int64)]))
        row_ids = _card_rows(loaded, cands)
        row_scores = loaded.vectors[row_ids] @ qvec[0]
    if row_ids is None:
        per_row = row_scores  # a fresh array of every row's cosine
    else:
        per_row = np.full(loaded.rows, -np.inf, dtype=np.float32)
        per_row[row_ids[row_ids >= 0]] = row_scores[row_ids >= 0]
    whole = per_row[loaded.first_row]
    per_row[loaded.first_row] = -np.inf
    best = np.maximum.reduceat(per_row, loaded.first_row)
    best = np.where(np.isfinite(best), best, whole)  # a card with one row: its whole-card cosine
    return _best_k(loaded, cands, whole[cands], best[cands], bonus, k)


def _best_k(loaded: LoadedIndex, cands: np.ndarray, whole: np.ndarray, best: np.ndarray,
            bonus: dict[int, float], k: int) -> list[tuple[float, int]]:
    """The best k (score, card position) of `cands` (sorted), whose whole-card and best other
    cosines are given: their mean plus the bonus, rounded to 4 places, ties by card id."""
    import numpy as np

    doubled = (whole + best).astype(np.float64)  # twice the mean (the float32 sum, exactly)
    if bonus:  # cands is sorted (an arange or np.unique): find each bonus card's place in it
        keys = np.fromiter(bonus, np.int64, len(bonus))
        at = np.minimum(np.searchsorted(cands, keys), len(cands) - 1)
        hit = cands[at] == keys
        doubled[at[hit]] += 2 * np.fromiter(bonus.values(), np.float64, len(bonus))[hit]
    return _top_k(loaded, cands, doubled.tolist(), k)


def _top_k(loaded: LoadedIndex, cands: np.ndarray | None, doubled: list[float],
           k: int) -> list[tuple[float, int]]:
    """The best k (score rounded to 4 places, card position) of `doubled`, twice the scores of
    `cands` (or of every card position when None), ties by card id. Halving is exact, so the
    order, the bound and the rounded scores are those of the scores themselves.

    Only cards within a rounding step of the k-th best can be among the best k once scores are
    rounded; the rest are never rounded or sorted. In plain Python over one list: a handful of
    numpy calls on arrays this small cost more (~15 µs each once the embedding has flushed the
    caches) than the loop."""
    if not doubled:
        return []
    floor = heapq.nlargest(k, doubled)[-1] - 2e-4
    places = range(len(doubled)) if cands is None else cands.tolist()
    ids = loaded.card_ids
    out = sorted([(round(x * 0.5, 4), c) for x, c in zip(doubled, places) if x >= floor],
                 key=lambda p: (-p[0], ids[p[1]]))
    return out[:k]


# ----------------------------------------------------------------------------- lexical bonus

# Words that name an intent outright. `get` and `top` are left out: they are everyday words.
_INTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "describe": ("describe", "description", "details", "in detail"), "logs": ("logs", "log"),
    "events": ("events",), "diagnose": ("diagnose", "troubleshoot"),
    "can-i": ("can i", "am i allowed", "am i permitted", "do i have permission"),
    "rollout-status": ("rollout status",),
    "rollout-history": ("rollout history",), "restart": ("restart",), "scale": ("scale",),
    "set-image": ("set image",), "rollback": ("rollback", "roll back"),
    "autoscale": ("autoscale",), "cordon": ("cordon",), "uncordon": ("uncordon",),
    "drain": ("drain", "evacuate"), "delete": ("delete", "remove"),
}
# "in the dev namespace", "namespace dev": where, not what; the kind named there is no hint.
_WHERE_RE = re.compile(
    r"\b(?:in|from|of|across)\s+(?:the\s+)?(?:[a-z0-9-]+\s+(?:namespace|ns)\b|(?:namespace|ns)\s+[a-z0-9-]+)"
)
# Kinds users spell in several words; matched before single words, so the "pod" in
# "horizontal pod autoscaler" does not count as a pod.
_KIND_PHRASES_RE = re.compile(
    r"\b(horizontal pod autoscaler|pod autoscaler|autoscaler|persistent volume claim|volume claim"
    r"|config map|stateful set|daemon set|replica set|cron job)s?\b"
)
_KIND_PHRASES = {
    "horizontal pod autoscaler": "hpa", "pod autoscaler": "hpa", "autoscaler": "hpa",
    "persistent volume claim": "pvc", "volume claim": "pvc", "config map": "configmap",
    "stateful set": "statefulset", "daemon set": "daemonset", "replica set": "replicaset",
    "cron job": "cronjob",
}
_WORD_RE = re.compile(r"[a-z0-9]+")
# A word each pattern cannot match without: the where-words, the last word of each kind phrase.
_WHERE_WORDS = frozenset({"namespace", "ns"})
_KIND_PHRASE_ENDS = frozenset(
    w + s for w in ("autoscaler", "claim", "map", "set", "job") for s in ("", "s"))
_MAX_PHRASE = 4


@lru_cache(maxsize=8192)  # a query's words recur; a cached stem is one C call
def _stem(word: str) -> str:
    """A light stemmer, enough for "keeps crashing" to meet "keep crash"."""
    for suffix, floor in (("ing", 5), ("ed", 4), ("es", 5), ("s", 4)):
        if word.endswith(suffix) and len(word) >= floor and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def _phrase_key(text: str) -> tuple[str, ...]:
    return tuple(_stem(w) for w in _WORD_RE.findall(text.lower()))


@dataclass(frozen=True)
class _Lexicon:
    phrases: dict[tuple[str, ...], frozenset[int]]  # keyword or intent phrase -> card positions
    kinds: dict[str, frozenset[int]]  # canonical kind -> card positions
    permission: frozenset[tuple[str, ...]] = frozenset()  # the can-i intent's phrases, stemmed
    # The first word of every phrase of two words or more: only there is a longer match tried.
    starts: frozenset[str] = frozenset()


_LEXICONS: dict[int, tuple[Corpus, _Lexicon]] = {}


def _lexicon(corpus: Corpus) -> _Lexicon:
    hit = _LEXICONS.get(id(corpus))
    if hit is not None and hit[0] is corpus:
        return hit[1]
    phrases: dict[tuple[str, ...], set[int]] = {}
    kinds: dict[str, set[int]] = {}
    for pos, card in enumerate(corpus.cards):
        for text in (*card.keywords, *_INTENT_PHRASES.get(card.intent, ())):
            key = _phrase_key(text)
            if 0 < len(key) <= _MAX_PHRASE:
                phrases.setdefault(key, set()).add(pos)
        kinds.setdefault(card.resource, set()).add(pos)
    lex = _Lexicon({k: frozenset(v) for k, v in phrases.items()},
                   {k: frozenset(v) for k, v in kinds.items()},
                   frozenset(_phrase_key(p) for p in _INTENT_PHRASES["can-i"]),
                   frozenset(k[0] for k in phrases if len(k) > 1))
    if len(_LEXICONS) > 16:
        _LEXICONS.clear()
    _LEXICONS[id(corpus)] = (corpus, lex)
    return lex


def _lexical_bonus(corpus: Corpus, text: str) -> dict[int, float]:
    """Card position -> bonus: KIND_BONUS when the query names the card's kind, KEYWORD_BONUS
    when it contains one of the card's keywords or its intent's name.

    The small embedding model blurs kinds and verbs that the user spelled out; a word-level
    match restores them without outweighing the embedding (each bonus is a few hundredths).
    """
    lex = _lexicon(corpus)
    lowered = text.lower()
    words = _WORD_RE.findall(lowered)
    stems = [_stem(w) for w in words]
    phrases, starts = lex.phrases, lex.starts
    matched: set[int] = set()
    permission = False
    for i, first in enumerate(stems):
        hit = phrases.get((first,))
        if hit:
            matched |= hit
            permission = permission or (first,) in lex.permission
        if first in starts:
            for n in range(2, min(_MAX_PHRASE, len(stems) - i) + 1):
                key = tuple(stems[i:i + n])
                hit = phrases.get(key)
                if hit:
                    matched |= hit
                    permission = permission or key in lex.permission
    bonus = dict.fromkeys(matched, KEYWORD_BONUS)
    # A permission question ("am I permitted to create deployments"): the verb and kind it names
    # are what it asks about, not what to do, so only the can-i cards earn a bonus from them
    # (as extraction reads "can I <verb>" as can-i before any other intent). The can-i phrases
    # are phrases of the can-i cards: no such card, no bonus to give.
    asking = {pos for pos in matched if corpus.cards[pos].intent == "can-i"} \
        if permission else set()
    if asking:
        return {pos: KEYWORD_BONUS + KIND_BONUS for pos in asking}
    # Each pattern runs only when a word it needs is there (~5 µs a pattern, cold).
    what, rest = lowered, words
    if not _WHERE_WORDS.isdisjoint(words):
        what = _WHERE_RE.sub(" ", lowered)
        rest = _WORD_RE.findall(what)
    kinds: set[str | None] = set()
    if not _KIND_PHRASE_ENDS.isdisjoint(rest):
        kinds = {_KIND_PHRASES[m] for m in _KIND_PHRASES_RE.findall(what)}
        rest = _WORD_RE.findall(_KIND_PHRASES_RE.sub(" ", what))
    kinds |= {normalize_resource(w) for w in rest}
    kinds.discard(None)
    if kinds:
        kinds.add("*")  # a card for any kind fits whatever kind is named, as in the filters
    for kind in kinds:
        for pos in lex.kinds.get(kind or "", frozenset()):
            bonus[pos] = bonus.get(pos, 0.0) + KIND_BONUS
    return bonus


_TOKENS: dict[str, int] = {}


def count_tokens(text: str) -> int:
    """Tokens in `text` by the embedder's own tokenizer (no special tokens)."""
    n = _TOKENS.get(text)
    if n is None:
        from .embed import token_count

        n = token_count(text)
        if len(_TOKENS) > 4096:
            _TOKENS.clear()
        _TOKENS[text] = n
    return n


def _truncate(text: str, max_tokens: int) -> str:
    from .embed import counting_tokenizer

    offsets = counting_tokenizer().encode(text, add_special_tokens=False).offsets
    if len(offsets) <= max_tokens:
        return text
    return text[:offsets[max_tokens - 1][1]].rstrip() + " ..."


def _within_budget(hits: list[Hit], budget: int = SNIPPET_BUDGET) -> list[Hit]:
    """Drop the lowest hits until the snippets fit `budget` tokens (keeping two), then cut the
    longest snippets until they fit."""
    sizes = [count_tokens(h.snippet) for h in hits]
    if sum(sizes) <= budget:  # the usual case: nothing to drop or cut
        return hits
    while len(hits) > MIN_HITS and sum(sizes) > budget:
        hits, sizes = hits[:-1], sizes[:-1]
    hits = list(hits)
    for i in sorted(range(len(hits)), key=lambda i: (-sizes[i], i)):  # the longest first
        over = sum(sizes) - budget
        if over <= 0:
            break
        # " ..." adds a token or two: leave room for them.
        target = max(budget // len(hits), sizes[i] - over) - 4
        hits[i] = Hit(hits[i].card_id, hits[i].score, _truncate(hits[i].snippet, target))
        sizes[i] = count_tokens(hits[i].snippet)
    return hits
