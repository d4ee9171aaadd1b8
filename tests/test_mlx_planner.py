"""The MLX planner on the tiny random 4-bit Llama: real loading, prompting and constrained decoding.

The tiny model knows nothing, so these tests prove what the grammar guarantees whatever the
weights: every output is schema-valid, request values stay as given, slots only take values the
request contains, retries happen, and `auto` chooses as documented. The model is built once per
session (or taken from `make tiny-model`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rag_k8s.cards import Corpus, cached_corpus
from rag_k8s.config import Settings
from rag_k8s.errors import InvalidRequest
from rag_k8s.models import TINY_DIR_NAME, build_tiny_model, is_complete
from rag_k8s.planner import make_plan
from rag_k8s.planner.constrained import generate
from rag_k8s.planner.mlx import (
    MAX_TOKENS, build_prompt, load_model, plan_with_mlx_traced, resolve_model,
)
from rag_k8s.planner.schema import NONE_CARD, plan_schema, schema_cards
from rag_k8s.request import parse_request
from rag_k8s.retrieve import retrieve_request

pytestmark = pytest.mark.mlx

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = REPO / "models" / TINY_DIR_NAME  # `make test` builds it first
    if is_complete(built):
        return built
    return build_tiny_model(tmp_path_factory.mktemp("models") / TINY_DIR_NAME)


@pytest.fixture
def settings(tiny_model: Path) -> Settings:
    return Settings.resolve(planner="mlx", model=str(tiny_model))


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return cached_corpus(REPO / "cards")


FREE_TEXT = "scale the worker deployment in staging to 4 replicas"
STRUCTURED = {"intent": "scale", "resource": "deployment", "namespace": "staging",
              "name": "worker", "params": {"replicas": 4}}


def _schema_and_prompt(payload: dict[str, Any], settings: Settings,
                       corpus: Corpus) -> tuple[dict[str, Any], list[int], Any, Any]:
    request = parse_request(payload)
    hits = retrieve_request(request, settings=settings)
    schema = plan_schema(request, hits, corpus)
    model, tokenizer = load_model(resolve_model(settings))
    prompt = build_prompt(tokenizer, request, schema_cards(schema, corpus),
                          {h.card_id: h.snippet for h in hits})
    return schema, prompt, model, tokenizer


@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_thirty_constrained_generations_in_a_row_are_all_schema_valid(
    temperature: float, settings: Settings, corpus: Corpus
) -> None:
    schema, prompt, model, tokenizer = _schema_and_prompt({"query": FREE_TEXT}, settings, corpus)
    validator = jsonschema.Draft202012Validator(schema)
    outputs = []
    for seed in range(30):
        gen = generate(model, tokenizer, prompt, schema=schema, max_tokens=MAX_TOKENS,
                       temperature=temperature, seed=seed)
        assert gen.finished, gen.text
        doc = json.loads(gen.text)
        validator.validate(doc)
        outputs.append(doc)
    # Grounding: whatever the random weights chose, every slot value is a word of the request.
    for doc in outputs:
        for value in doc["slots"].values():
            assert str(value) in FREE_TEXT
    assert len({json.dumps(d, sort_keys=True) for d in outputs}) > 1  # it really sampled


def test_values_the_request_gives_are_never_changed(settings: Settings, corpus: Corpus) -> None:
    schema, prompt, model, tokenizer = _schema_and_prompt(STRUCTURED, settings, corpus)
    for seed in range(10):
        gen = generate(model, tokenizer, prompt, schema=schema, max_tokens=MAX_TOKENS,
                       temperature=1.0, seed=seed)
        doc = json.loads(gen.text)
        if doc["card_id"] == NONE_CARD:
            continue
        assert doc["card_id"] == "scale-deployment"  # the only card of that intent and kind
        assert {k: doc["slots"][k] for k in ("name", "namespace", "replicas")} == {
            "name": "worker", "namespace": "staging", "replicas": 4}


def test_forced_spans_cost_no_sampling_step(settings: Settings, corpus: Corpus) -> None:
    schema, prompt, model, tokenizer = _schema_and_prompt(STRUCTURED, settings, corpus)
    gen = generate(model, tokenizer, prompt, schema=schema, max_tokens=MAX_TOKENS,
                   temperature=0.2, seed=0)
    assert gen.finished
    # Keys, punctuation and const values are forced: far fewer passes than tokens.
    assert gen.forward_passes == gen.sampled
    assert gen.sampled < gen.generated


def _plans_over_seeds(settings: Settings, corpus: Corpus, budgets: tuple[int, ...],
                      seeds: range = range(8)) -> list[tuple[Any, Any]]:
    """(plan, trace) for each seed whose output was a card; the random model may also say
    "none" (a NoMatch), which is the one other outcome allowed."""
    from rag_k8s.errors import NoMatch

    request = parse_request(STRUCTURED)
    hits = retrieve_request(request, settings=settings)
    out = []
    for seed in seeds:
        try:
            out.append(plan_with_mlx_traced(request, hits, corpus, settings, budgets=budgets,
                                            seed=seed))
        except NoMatch as e:
            assert str(e).startswith("the MLX planner found that no command card does what")
    assert out, "no seed produced a plan"
    return out


def test_the_plan_renders_through_the_card_with_the_request_values(
    settings: Settings, corpus: Corpus
) -> None:
    for plan, trace in _plans_over_seeds(settings, corpus, (MAX_TOKENS, MAX_TOKENS)):
        assert plan.planner == "mlx"
        assert plan.argv == ["kubectl", "scale", "deployment/worker", "--replicas=4", "-n",
                             "staging"]
        assert [s["card_id"] for s in plan.sources] == ["scale-deployment"]
        assert trace.attempts[-1].finished


def test_a_truncated_first_attempt_is_retried_once(settings: Settings, corpus: Corpus) -> None:
    for plan, trace in _plans_over_seeds(settings, corpus, (3, MAX_TOKENS)):
        assert len(trace.attempts) == 2
        assert trace.errors == [trace.errors[0]]
        assert trace.errors[0].startswith("attempt 1: output stopped after 3 tokens")
        assert plan.argv[:3] == ["kubectl", "scale", "deployment/worker"]


def test_two_failed_attempts_give_a_clear_error(settings: Settings, corpus: Corpus) -> None:
    from rag_k8s.errors import PlannerError

    request = parse_request(STRUCTURED)
    hits = retrieve_request(request, settings=settings)
    with pytest.raises(PlannerError) as err:
        plan_with_mlx_traced(request, hits, corpus, settings, budgets=(3, 3))
    assert "produced no valid plan in 2 attempts" in str(err.value)
    assert "attempt 2: output stopped after 3 tokens" in str(err.value)


def test_a_required_slot_the_request_lacks_is_asked_for_not_invented(
    settings: Settings, corpus: Corpus
) -> None:
    with pytest.raises(InvalidRequest) as err:
        make_plan(parse_request({"query": "restart the deployment in prod"}),
                  settings=settings, corpus=corpus)
    assert err.value.field == "name"
    assert str(err.value).startswith("name: which deployment?")


def test_a_card_of_another_intent_is_never_offered_for_a_structured_request(
    settings: Settings, corpus: Corpus
) -> None:
    request = parse_request(STRUCTURED)
    schema = plan_schema(request, retrieve_request(request, settings=settings), corpus)
    # One branch, and no way to answer "no card fits": the request named its intent and kind.
    assert "anyOf" not in schema
    assert schema["properties"]["card_id"] == {"const": "scale-deployment"}


def test_free_text_gets_the_no_card_fits_branch(settings: Settings, corpus: Corpus) -> None:
    request = parse_request({"query": "make me a sandwich"})
    try:
        schema = plan_schema(request, retrieve_request(request, settings=settings), corpus)
    except Exception as e:  # nothing retrieved fits at all: a NoMatch before any model runs
        assert type(e).__name__ == "NoMatch"
        return
    assert schema["anyOf"][-1]["properties"]["card_id"] == {"const": NONE_CARD}


def test_auto_uses_the_model_for_an_undetermined_request(
    tiny_model: Path, corpus: Corpus
) -> None:
    settings = Settings.resolve(planner="auto", model=str(tiny_model))
    # No kind named: the template path would have to assume one, so auto asks the model.
    request = parse_request({"query": "bounce api in prod"})
    plan = make_plan(request, settings=settings, corpus=corpus)
    if plan.planner == "template":  # the random model said "none" or failed: auto fell back
        assert plan.argv == ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"]
    else:
        assert plan.planner == "mlx"
        assert plan.card_id.startswith("restart-")
        assert plan.argv[-2:] == ["-n", "prod"] and "api" in plan.argv[3]


def test_auto_takes_the_template_path_without_loading_the_model_when_determined(
    tiny_model: Path, corpus: Corpus
) -> None:
    settings = Settings.resolve(planner="auto", model=str(tiny_model))
    plan = make_plan(parse_request(STRUCTURED), settings=settings, corpus=corpus)
    assert plan.planner == "template"


def _hub_cache_with(model_dir: Path, cache: Path, repo_id: str) -> Path:
    """Lay `model_dir` out as the Hugging Face cache holds a downloaded repo (what a user's Mac
    has after the first run); returns the snapshot folder."""
    import shutil

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    shutil.copytree(model_dir, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def test_a_hub_id_in_the_local_cache_loads_without_a_download(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corpus: Corpus
) -> None:
    from rag_k8s.planner.mlx import model_available

    cache = tmp_path / "hf-cache"
    snapshot = _hub_cache_with(tiny_model, cache, "mlx-community/tiny-test-4bit")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    settings = Settings.resolve(planner="mlx", model="mlx-community/tiny-test-4bit")
    assert model_available(settings)
    assert resolve_model(settings) == str(snapshot)
    plan = make_plan(parse_request(STRUCTURED), settings=settings, corpus=corpus)
    assert plan.planner == "mlx"


def test_a_hub_id_not_in_the_cache_offline_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_k8s.errors import ModelNotFound
    from rag_k8s.planner.mlx import model_available

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    settings = Settings.resolve(planner="mlx", model="mlx-community/Llama-3.2-3B-Instruct-4bit")
    assert not model_available(settings)
    with pytest.raises(ModelNotFound) as err:
        resolve_model(settings)
    assert str(err.value).startswith(
        "model mlx-community/Llama-3.2-3B-Instruct-4bit is not in the local Hugging Face cache "
        "and HF_HUB_OFFLINE is set: run once online on your Mac to download it")
