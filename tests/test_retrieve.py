"""Retrieval over the real card corpus: top-1 accuracy, strict filters, ties and the token budget."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rag_k8s import cards as cards_module
from rag_k8s import index as index_module
from rag_k8s.cards import cached_corpus
from rag_k8s.config import Settings
from rag_k8s.errors import InvalidRequest
from rag_k8s.request import parse_request
from rag_k8s.retrieve import (
    SNIPPET_BUDGET, Hit, _within_budget, count_tokens, retrieve, retrieve_request,
)

ASSET_CARDS = Path(__file__).resolve().parent / "assets" / "index_cards"

# Written fresh for this table: none is a card's example, and none needs a filter.
TOP1 = [
    ("bounce the checkout deployment", "restart-deployment"),
    ("why does my pod keep crashing", "diagnose-pod-crashloop"),
    ("stop scheduling new pods onto node-7", "cordon-node"),
    ("put node-7 back into service after the repair", "uncordon-node"),
    ("run five copies of the frontend deployment", "scale-deployment"),
    ("ship version 2.4 of the container image to the cart deployment", "set-image-deployment"),
    ("the last release of payments is broken, go back to the previous version",
     "rollback-deployment"),
    ("is the new rollout of the search deployment finished yet", "rollout-status-deployment"),
    ("list the revisions the billing deployment has been through", "rollout-history-deployment"),
    ("add horizontal autoscaling between 2 and 10 pods to the web deployment",
     "autoscale-deployment"),
    # "the most" is a ranking: the --sort-by card, not the plain listing.
    ("which pods are eating the most memory", "top-pod-sorted"),
    ("how much cpu and memory are the pods in staging using", "top-pod"),
    ("who is using all the cpu on node-1", "top-node"),
    ("print what the worker pod wrote to stdout", "logs-pod"),
    ("last 100 lines of log from pod api-1", "logs-pod"),
    ("what happened to pod api-1 recently, show its events", "events-pod"),
    ("am I permitted to create deployments in staging", "can-i-any"),
    ("show every node of the cluster and whether it is ready", "get-node"),
    ("full details about the ingress called shop", "describe-ingress"),
    ("print the full description of pod web-2 in dev", "describe-pod"),
    ("remove the finished batch job report-42", "delete-job"),
    ("kill the pod worker-5", "delete-pod"),
    ("get rid of the old-config configmap", "delete-configmap"),
    ("list the cron schedules in staging", "get-cronjob"),
    ("restart the redis statefulset", "restart-statefulset"),
    ("roll the fluentd daemonset so it picks up the new config", "restart-daemonset"),
    ("scale the kafka statefulset to three brokers", "scale-statefulset"),
    ("undo the last change to the mongo statefulset", "rollback-statefulset"),
    ("give me the yaml of the settings configmap", "get-configmap"),
    ("which persistent volume claims are bound in prod", "get-pvc"),
    ("what namespaces does this cluster have", "get-namespace"),
    ("show the horizontal pod autoscalers and their targets", "get-hpa"),
    ("show the pods in the prod namespace", "get-pod"),
    ("check the health of node-2, is it under pressure", "diagnose-node"),
    ("why are the replicas of my deployment not becoming available", "diagnose-deployment"),
    ("tail the output of all pods of the api deployment", "logs-deployment"),
    ("recent warnings across the staging namespace", "events-namespace"),
    ("how is the rollout of the search deployment going", "rollout-status-deployment"),
]


@pytest.fixture(scope="module")
def real_settings(rag_home: Path) -> Settings:
    """The real corpus and the session's shared home: the index is built once per session."""
    return Settings.resolve(home=rag_home, cards_dir=Path(__file__).resolve().parent.parent / "cards")


def test_table_is_not_copied_from_the_cards_examples(real_settings: Settings) -> None:
    examples = {ex.query.lower() for c in cached_corpus(real_settings.cards_dir) for ex in c.examples}
    assert len(TOP1) >= 30
    assert [q for q, _ in TOP1 if q.lower() in examples] == []


@pytest.mark.parametrize(("query", "card_id"), TOP1)
def test_plain_language_query_finds_the_right_card_first(
    real_settings: Settings, query: str, card_id: str
) -> None:
    hits = retrieve(query, settings=real_settings)

    assert hits[0].card_id == card_id, [(h.card_id, h.score) for h in hits]
    assert sum(count_tokens(h.snippet) for h in hits) <= SNIPPET_BUDGET


@pytest.mark.parametrize("k", [2, 3, 4])
def test_returns_k_hits_sorted_by_score(real_settings: Settings, k: int) -> None:
    hits = retrieve("restart the api deployment", k=k, settings=real_settings)

    assert len(hits) == k
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.score == round(h.score, 4) for h in hits)
    corpus = cached_corpus(real_settings.cards_dir)
    assert [h.snippet for h in hits] == [corpus.get(h.card_id).snippet() for h in hits]


@pytest.mark.parametrize("k", [0, 1, 5, True])
def test_k_outside_two_to_four_is_invalid(real_settings: Settings, k: int) -> None:
    with pytest.raises(InvalidRequest) as exc:
        retrieve("restart api", k=k, settings=real_settings)
    assert exc.value.field == "k"


@pytest.mark.parametrize(
    ("intent", "resource", "expect_intents", "expect_resources"),
    [
        ("get", None, {"get"}, None),
        (None, "node", None, {"node", "*"}),
        ("scale", "deploy", {"scale"}, {"deployment"}),
        ("rollback", "statefulsets", {"rollback"}, {"statefulset"}),
        ("describe", "svc", {"describe"}, {"service"}),
    ],
)
def test_filters_keep_only_fitting_cards(
    real_settings: Settings, intent: str | None, resource: str | None,
    expect_intents: set[str] | None, expect_resources: set[str] | None,
) -> None:
    corpus = cached_corpus(real_settings.cards_dir)
    hits = retrieve("show me what is going on", intent, resource, settings=real_settings)
    fitting = [h for h in hits if
               (expect_intents is None or corpus.get(h.card_id).intent in expect_intents)
               and (expect_resources is None or corpus.get(h.card_id).resource in expect_resources)]
    n_fit = len(corpus.matching(intent, resource and {"deploy": "deployment",
                                                      "statefulsets": "statefulset",
                                                      "svc": "service"}.get(resource, resource)))

    assert len(hits) == min(4, n_fit)
    assert fitting == hits[:min(4, n_fit)]


@pytest.mark.parametrize(
    ("intent", "resource", "first"),
    [
        ("restart", "deployment", "restart-deployment"),
        ("rollback", "statefulset", "rollback-statefulset"),
    ],
)
def test_filters_leaving_one_card_return_only_that_card(
    real_settings: Settings, intent: str, resource: str | None, first: str
) -> None:
    hits = retrieve("", intent, resource, settings=real_settings)

    assert [h.card_id for h in hits] == [first]


@pytest.mark.parametrize(
    ("intent", "resource", "cards"),
    [
        ("drain", "node",
         ["drain-node", "drain-node-emptydir", "drain-node-force", "drain-node-pod-selector"]),
        ("can-i", "secret", ["can-i-any", "can-i-list"]),
        ("can-i", None, ["can-i-any", "can-i-list"]),
    ],
)
def test_filters_leaving_a_few_cards_rank_the_plain_card_first(
    real_settings: Settings, intent: str, resource: str | None, cards: list[str]
) -> None:
    """The bare "drain node" is the plain card, not a variant that adds a flag (--force)."""
    hits = retrieve("", intent, resource, settings=real_settings)

    assert hits[0].card_id == cards[0]
    assert sorted(h.card_id for h in hits) == cards


def test_blank_query_with_filters_embeds_intent_and_resource(real_settings: Settings) -> None:
    assert retrieve("  ", "scale", "statefulset", settings=real_settings) == \
        retrieve("scale statefulset", "scale", "statefulset", settings=real_settings)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", None, None), "query"),
        (("restart api", "reboot", None), "intent"),
        (("restart api", None, "widget"), "resource"),
    ],
)
def test_bad_arguments_are_invalid_requests(
    real_settings: Settings, args: tuple[str, str | None, str | None], field: str
) -> None:
    with pytest.raises(InvalidRequest) as exc:
        retrieve(*args, settings=real_settings)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("payload", "first"),
    [
        ({"query": "bounce the checkout deployment in prod"}, ["restart-deployment"]),
        ({"intent": "restart", "resource": "deploy", "name": "api", "namespace": "prod"},
         ["restart-deployment"]),
        ({"intent": "logs", "resource": "pod", "query": "what did it print before dying"},
         ["logs-pod"]),
        ({"intent": "logs", "query": "what did it print before dying"}, ["logs-pod"]),
    ],
)
def test_retrieve_request_uses_query_or_fields_and_filters(
    real_settings: Settings, payload: dict[str, object], first: list[str]
) -> None:
    hits = retrieve_request(parse_request(payload), settings=real_settings)

    assert [h.card_id for h in hits][:len(first)] == first
    if "intent" in payload:
        # Every card that fits the filters, up to four, and no other.
        corpus = cached_corpus(real_settings.cards_dir)
        kind = {"deploy": "deployment"}.get(payload.get("resource"), payload.get("resource"))
        fits = {c.id for c in corpus.matching(payload["intent"], kind)}
        assert len(hits) == min(4, len(fits))
        assert {h.card_id for h in hits} <= fits
    else:
        assert 2 <= len(hits) <= 4


def test_warm_call_rereads_no_card_and_no_manifest(
    real_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    retrieve("restart api", settings=real_settings)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a warm retrieve re-read a file")

    monkeypatch.setattr(cards_module, "load_corpus", refuse)
    monkeypatch.setattr(index_module, "_read_manifest", refuse)
    monkeypatch.setattr(index_module, "build_index", refuse)
    assert retrieve("restart api", settings=real_settings)[0].card_id == "restart-deployment"


# ---- ties and the budget, on private copies of the small asset corpus


@pytest.fixture
def asset_copy(tmp_path: Path) -> tuple[Settings, Path]:
    dest = tmp_path / "cards"
    shutil.copytree(ASSET_CARDS, dest)
    return Settings.resolve(home=tmp_path / "home", cards_dir=dest), dest


def clone_card(cards_dir: Path, source: str, new_id: str, **changes: object) -> None:
    data = yaml.safe_load((cards_dir / f"{source}.yaml").read_text())
    data.update(id=new_id, **changes)
    (cards_dir / f"{new_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_equal_scores_break_ties_by_card_id(asset_copy: tuple[Settings, Path]) -> None:
    settings, cards_dir = asset_copy
    # Same texts under other ids: identical vectors, so identical scores.
    clone_card(cards_dir, "get-pod", "a-get-pod")
    clone_card(cards_dir, "get-pod", "z-get-pod")

    hits = retrieve("list the pods of staging", k=3, settings=settings)

    assert [h.card_id for h in hits] == ["a-get-pod", "get-pod", "z-get-pod"]
    assert hits[0].score == hits[1].score == hits[2].score
    assert retrieve("list the pods of staging", k=3, settings=settings) == hits


def test_oversized_snippets_are_cut_to_the_budget(asset_copy: tuple[Settings, Path]) -> None:
    settings, cards_dir = asset_copy
    huge = " ".join(f"word{i}" for i in range(1500))  # about 4,500 tokens
    data = yaml.safe_load((cards_dir / "drain-node.yaml").read_text())
    data["placeholders"]["name"]["description"] = huge
    (cards_dir / "drain-node.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    hits = retrieve("drain node worker-9 for maintenance", settings=settings)

    assert hits[0].card_id == "drain-node"
    assert len(hits) >= 2
    assert sum(count_tokens(h.snippet) for h in hits) <= SNIPPET_BUDGET
    assert hits[0].snippet.startswith("[drain-node] drain node (risk high): ")
    assert hits[0].snippet.endswith(" ...")


def _hit(card_id: str, tokens: int) -> Hit:
    # "alpha" is one token of the MiniLM vocabulary; spaces add none.
    return Hit(card_id, 0.5, " ".join(["alpha"] * tokens))


@pytest.mark.parametrize(
    ("sizes", "kept"),
    [
        ([300, 300, 300, 300], 4),
        ([400, 400, 400, 400], 3),
        ([500, 500, 500, 500], 2),
    ],
)
def test_budget_drops_lowest_hits_first(sizes: list[int], kept: int) -> None:
    hits = [_hit(f"card-{i}", n) for i, n in enumerate(sizes)]
    assert [count_tokens(h.snippet) for h in hits] == sizes

    out = _within_budget(hits)

    assert out == hits[:kept]
    assert sum(count_tokens(h.snippet) for h in out) <= SNIPPET_BUDGET


@pytest.mark.parametrize(
    ("sizes", "cut_to"),
    [
        ([700, 600, 100, 100], [599, 600]),
        ([1200, 5], [1194, 5]),
        ([3000, 10], [1189, 10]),
        ([900, 900], [599, 600]),
    ],
)
def test_budget_keeps_two_hits_and_cuts_the_longest(sizes: list[int], cut_to: list[int]) -> None:
    out = _within_budget([_hit(f"card-{i}", n) for i, n in enumerate(sizes)])

    assert [h.card_id for h in out] == ["card-0", "card-1"]
    assert [count_tokens(h.snippet) for h in out] == cut_to
    assert sum(cut_to) <= SNIPPET_BUDGET
    assert all(h.snippet.startswith("alpha alpha") for h in out)
    assert [h.snippet.endswith(" ...") for h in out] == [n > c for n, c in zip(sizes, cut_to)]


@pytest.mark.parametrize(
    "query",
    [
        "am I permitted to create deployments in staging",
        "can I delete configmaps in prod",
        "am I allowed to create jobs in dev",
    ],
)
def test_a_permission_question_gives_no_bonus_to_the_verb_it_asks_about(
    real_settings: Settings, query: str
) -> None:
    """"can I create deployments" asks about create, it does not ask to create: the lexical bonus
    goes to the can-i cards only, never to create-deployment for its keyword."""
    from rag_k8s.retrieve import KEYWORD_BONUS, KIND_BONUS, _lexical_bonus

    corpus = cached_corpus(real_settings.cards_dir)
    bonus = _lexical_bonus(corpus, query)
    assert {corpus.cards[pos].id for pos in bonus} == {"can-i-any", "can-i-list"}
    assert set(bonus.values()) == {KEYWORD_BONUS + KIND_BONUS}


def test_the_noun_description_names_the_describe_intent(real_settings: Settings) -> None:
    from rag_k8s.retrieve import _lexical_bonus

    corpus = cached_corpus(real_settings.cards_dir)
    bonus = _lexical_bonus(corpus, "the description of the api service")
    assert {corpus.cards[pos].intent for pos, b in bonus.items() if b >= 0.1} == {"describe"}


def _ranked_reference(loaded: index_module.LoadedIndex, qvec: object, bonus: dict[int, float],
                      k: int) -> list[tuple[float, int]]:
    """Every card scored in plain Python: the definition `_ranked` must agree with."""
    import numpy as np

    scores = loaded.vectors @ np.asarray(qvec)[0]
    ends = [*loaded.first_row[1:], loaded.rows]
    out = []
    for c, (start, end) in enumerate(zip(loaded.first_row, ends)):
        whole = scores[start]
        best = max(scores[start + 1:end]) if end - start > 1 else whole
        out.append((round(float((whole + best) / 2) + bonus.get(c, 0.0), 4), c))
    out.sort(key=lambda p: (-p[0], loaded.card_ids[p[1]]))
    return out[:k]


@pytest.mark.parametrize("k", [2, 4])
def test_vectorised_ranking_agrees_with_scoring_every_card_in_python(
    real_settings: Settings, k: int
) -> None:
    """`_ranked` rounds and sorts only the cards within a rounding step of the k-th best; the
    result, ties included, must be what scoring every card would give."""
    from rag_k8s.index import embed, ensure_index
    from rag_k8s.retrieve import _lexical_bonus, _ranked

    loaded, corpus = ensure_index(real_settings)
    queries = [q for q, _ in TOP1] + ["pods", "delete", "node", "scale the thing"]
    for query in queries:
        qvec = embed([query], real_settings)
        bonus = _lexical_bonus(corpus, query)
        assert _ranked(loaded, qvec, bonus, k, None) == _ranked_reference(
            loaded, qvec, bonus, k), query
        # Bonuses that pull cards level with the leader exercise the tie-break.
        first = _ranked(loaded, qvec, {}, 1, None)[0]
        level = {pos: round(first[0] - score, 4)
                 for score, pos in _ranked_reference(loaded, qvec, {}, 6)[1:]}
        assert _ranked(loaded, qvec, level, k, None) == _ranked_reference(
            loaded, qvec, level, k), query


def test_the_benchmarks_fresh_process_times_each_query_both_ways(real_settings: Settings) -> None:
    """The warm-retrieval benchmark's measurement, run for real in its own interpreter."""
    from rag_k8s.benchmarks._fresh import fresh_retrieval_pairs

    index_module.ensure_index(real_settings)
    floor, warm = fresh_retrieval_pairs(str(real_settings.home), str(real_settings.cards_dir),
                                        ["restart the api deployment in prod", "drain node-3"], 2)

    assert len(floor) == len(warm) == 4
    assert all(0 < s < 5 for s in floor + warm)
