"""Grammar-constrained decoding with llguidance, on the CPU (no Metal), over an mlx-lm model.

Two ways in:
- `JsonLogitsProcessor`: an mlx-lm `logits_processors` callable (one `LLMatcher` per request).
- `generate`: our own decoding loop. Spans the grammar fixes (keys, punctuation, `const` values)
  are fed to the model together with the sampled token before them, in ONE forward pass, so they
  cost no sampling step; the model only samples where the grammar leaves a choice.
`llguidance.mlx` is not used: it needs Metal.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PlannerError

# A weak-model-friendly JSON grammar: no free whitespace between tokens.
JSON_DEFAULTS: dict[str, Any] = {"whitespace_flexible": False}

_LL_TOKENIZERS: dict[int, tuple[Any, Any]] = {}


def ll_tokenizer(tokenizer: Any, n_vocab: int) -> Any:
    """The llguidance tokenizer for an HF fast tokenizer (or mlx-lm's wrapper), built once (~1 s)."""
    hf = getattr(tokenizer, "_tokenizer", tokenizer)
    key = id(hf)
    cached = _LL_TOKENIZERS.get(key)
    if cached is not None and cached[0] is hf:
        return cached[1]
    import llguidance.hf

    ll = llguidance.hf.from_tokenizer(hf, n_vocab=n_vocab)
    _LL_TOKENIZERS[key] = (hf, ll)  # keep `hf` alive so its id is not reused
    return ll


def compile_grammar(schema: dict[str, Any]) -> str:
    """The llguidance grammar for a JSON Schema; raises PlannerError if llguidance rejects it."""
    from llguidance import LLMatcher

    grammar = LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=JSON_DEFAULTS)
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise PlannerError(f"the plan schema cannot be enforced: {messages[0]}")
    return grammar  # type: ignore[no-any-return]


class GrammarConstraint:
    """One request's matcher and its allowed-token mask over a vocabulary of `n_vocab`."""

    def __init__(self, ll_tok: Any, grammar: str, n_vocab: int) -> None:
        from llguidance import LLMatcher

        self.matcher = LLMatcher(ll_tok, grammar, log_level=0)
        self._check()
        self.n_vocab = n_vocab
        self.eos_id: int = ll_tok.eos_token
        self._words = (n_vocab + 31) // 32
        self._bitmask = np.zeros(self._words, dtype=np.int32)
        self.seconds = 0.0  # time spent in the grammar (mask, forced tokens, consume)

    def _check(self) -> None:
        if self.matcher.is_error():
            raise PlannerError(f"constrained decoding failed: {self.matcher.get_error()}")

    @property
    def stopped(self) -> bool:
        return bool(self.matcher.is_stopped())

    @property
    def accepting(self) -> bool:
        return bool(self.matcher.is_accepting())

    def forced(self) -> list[int]:
        """Tokens the grammar fixes from here (may be empty)."""
        t0 = time.perf_counter()
        tokens = list(self.matcher.compute_ff_tokens())
        self.seconds += time.perf_counter() - t0
        return tokens

    def consume(self, tokens: list[int]) -> None:
        t0 = time.perf_counter()
        ok = self.matcher.consume_tokens(tokens)
        self.seconds += time.perf_counter() - t0
        if not ok:
            self._check()

    def allowed(self) -> np.ndarray:
        """A boolean mask over the vocabulary: True where the grammar allows the token."""
        t0 = time.perf_counter()
        if self.stopped:
            # mlx-lm computes one step past the end: then only EOS may follow.
            allowed = np.zeros(self.n_vocab, dtype=bool)
            allowed[self.eos_id] = True
        else:
            self.matcher.unsafe_compute_mask_ptr(self._bitmask.ctypes.data,
                                                 self._bitmask.nbytes)
            self._check()
            bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
            allowed = bits[: self.n_vocab].astype(bool)
        self.seconds += time.perf_counter() - t0
        return allowed


class JsonLogitsProcessor:
    """An mlx-lm logits processor: `(tokens, logits) -> logits` with disallowed tokens at -inf."""

    def __init__(self, tokenizer: Any, schema: dict[str, Any], n_vocab: int) -> None:
        self.constraint = GrammarConstraint(ll_tokenizer(tokenizer, n_vocab),
                                            compile_grammar(schema), n_vocab)
        self._seen: int | None = None  # prompt length, learnt on the first call

    def __call__(self, tokens: Any, logits: Any) -> Any:
        import mlx.core as mx

        n = int(tokens.shape[0])
        if self._seen is None:
            self._seen = n  # the first call sees only the prompt
        elif n > self._seen:
            new = [int(t) for t in np.array(tokens[self._seen:])]
            self._seen = n
            if not self.constraint.stopped:
                self.constraint.consume(new)
        allowed = mx.array(self.constraint.allowed()[: logits.shape[-1]])
        return mx.where(allowed, logits, mx.array(-np.inf, dtype=logits.dtype))


@dataclass(frozen=True)
class Generation:
    """One decoding run: the text, and what it cost."""

    text: str
    tokens: list[int]  # generated token ids (sampled and forced), without EOS
    sampled: int  # tokens the model had to choose
    forward_passes: int  # model calls, the prompt's prefill included
    finished: bool  # the grammar completed (or EOS, unconstrained) within max_tokens
    seconds: float
    prefill_seconds: float
    grammar_seconds: float
    prompt_tokens: int
    reused_prompt_tokens: int = 0  # prompt tokens found in the kept KV cache

    @property
    def generated(self) -> int:
        return len(self.tokens)


def sample(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """One token: argmax at temperature 0, else Gumbel-max (same as softmax sampling)."""
    if temperature <= 0:
        return int(np.argmax(logits))
    gumbel = -np.log(-np.log(rng.uniform(1e-20, 1.0, size=logits.shape)))
    return int(np.argmax(logits / temperature + gumbel))


class PromptKV:
    """A model's KV cache kept between runs: the next prompt reuses its longest common prefix.

    Prefill dominates on a CPU (each prompt token costs about as much as a generated one), and
    consecutive plans share the system prompt and often the cards, so this saves most of it.
    """

    def __init__(self) -> None:
        self.cache: list[Any] | None = None
        self.fed: list[int] = []  # every token the cache holds, in order
        self.lock = threading.Lock()

    def prepare(self, model: Any, prompt_ids: list[int]) -> tuple[list[Any], int]:
        """A cache holding a prefix of `prompt_ids` (never all of it), and that prefix's length."""
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

        if self.cache is None or not can_trim_prompt_cache(self.cache):
            self.cache, self.fed = make_prompt_cache(model), []
        common = 0
        limit = min(len(self.fed), len(prompt_ids) - 1)  # the last prompt token must be fed
        while common < limit and self.fed[common] == prompt_ids[common]:
            common += 1
        trim_prompt_cache(self.cache, len(self.fed) - common)
        self.fed = self.fed[:common]
        return self.cache, common


def _last_logits(model: Any, tokens: list[int], cache: list[Any]) -> Any:
    """Logits at the last position only: the output layer over every prompt position is waste."""
    import mlx.core as mx

    inputs = mx.array(tokens)[None]
    inner, args = getattr(model, "model", None), getattr(model, "args", None)
    if inner is not None and args is not None and not hasattr(model, "language_model"):
        hidden = inner(inputs, cache=cache)[:, -1:, :]
        if getattr(args, "tie_word_embeddings", False) or not hasattr(model, "lm_head"):
            return inner.embed_tokens.as_linear(hidden)[0, -1, :]
        return model.lm_head(hidden)[0, -1, :]
    return model(inputs, cache=cache)[0, -1, :]


def generate(
    model: Any,
    tokenizer: Any,
    prompt_ids: list[int],
    *,
    schema: dict[str, Any] | None,
    max_tokens: int,
    temperature: float,
    seed: int,
    min_tokens: int = 0,
    kv: PromptKV | None = None,
) -> Generation:
    """Decode from `prompt_ids`, constrained by `schema` (None: free generation).

    Forced spans ride along with the token before them in one forward pass. Unconstrained runs
    stop at EOS only after `min_tokens` (the benchmark uses that to match a constrained length).
    With `kv`, the prompt's prefix already in that cache is not computed again.
    """
    kv = kv or PromptKV()
    with kv.lock:
        try:
            return _generate(model, tokenizer, prompt_ids, schema=schema, max_tokens=max_tokens,
                             temperature=temperature, seed=seed, min_tokens=min_tokens, kv=kv)
        except BaseException:
            kv.cache, kv.fed = None, []  # a half-updated cache must not be reused
            raise


def _generate(
    model: Any, tokenizer: Any, prompt_ids: list[int], *, schema: dict[str, Any] | None,
    max_tokens: int, temperature: float, seed: int, min_tokens: int, kv: PromptKV,
) -> Generation:
    import mlx.core as mx

    n_vocab = int(model.args.vocab_size)
    eos_ids = set(getattr(tokenizer, "eos_token_ids", None) or [tokenizer.eos_token_id])
    constraint = (GrammarConstraint(ll_tokenizer(tokenizer, n_vocab), compile_grammar(schema),
                                    n_vocab) if schema is not None else None)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    cache, reused = kv.prepare(model, prompt_ids)
    generated: list[int] = []
    sampled = passes = 0
    finished = False
    prefill_seconds = 0.0

    pending = list(prompt_ids[reused:])
    if constraint is not None:
        forced = constraint.forced()[:max_tokens]
        constraint.consume(forced)
        generated += forced
        pending += forced
    while len(generated) < max_tokens:
        logits = _last_logits(model, pending, cache)
        row = np.array(logits.astype(mx.float32))
        kv.fed += pending
        passes += 1
        if passes == 1:
            prefill_seconds = time.perf_counter() - t0
        if constraint is not None:
            allowed = constraint.allowed()
            row = np.where(allowed, row[:n_vocab], -np.inf)
        elif len(generated) < min_tokens:
            row[list(eos_ids)] = -np.inf
        token = sample(row, temperature, rng)
        sampled += 1
        if constraint is None:
            if token in eos_ids:
                finished = True
                break
            generated.append(token)
            pending = [token]
            continue
        constraint.consume([token])
        if token == constraint.eos_id or constraint.stopped:
            if token != constraint.eos_id:
                generated.append(token)
            finished = constraint.accepting
            break
        generated.append(token)
        forced = constraint.forced()[: max_tokens - len(generated)]
        if forced:
            constraint.consume(forced)
            generated += forced
        if constraint.stopped:
            finished = constraint.accepting
            break
        pending = [token, *forced]
    if constraint is None and len(generated) >= max_tokens:
        finished = True
    hf = getattr(tokenizer, "_tokenizer", tokenizer)
    text = hf.decode(generated, skip_special_tokens=False)
    return Generation(
        text=text, tokens=generated, sampled=sampled, forward_passes=passes, finished=finished,
        seconds=time.perf_counter() - t0, prefill_seconds=prefill_seconds,
        grammar_seconds=constraint.seconds if constraint else 0.0, prompt_tokens=len(prompt_ids),
        reused_prompt_tokens=reused,
    )
