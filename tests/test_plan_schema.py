"""The per-request plan schema: which cards the model may choose, and what each slot may take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag_k8s.cards import Corpus, cached_corpus
from rag_k8s.errors import InvalidRequest, NoMatch
from rag_k8s.planner.schema import NONE_CARD, grounded_values, plan_schema
from rag_k8s.request import parse_request
from rag_k8s.retrieve import Hit

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return cached_corpus(REPO / "cards")


def hits(*ids: str) -> list[Hit]:
    return [Hit(card_id, 0.5 - i / 100, "") for i, card_id in enumerate(ids)]


def branches(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """card_id -> the slot properties of its branch."""
    out = {}
    for b in schema.get("anyOf", [schema]):
        out[b["properties"]["card_id"]["const"]] = b["properties"]["slots"]["properties"]
    return out


def test_free_text_slots_take_what_the_extractor_read_and_optional_slots_nothing_else(
    corpus: Corpus,
) -> None:
    request = parse_request({"query": "show me the last 50 lines of logs from pod web-1 in dev"})
    got = branches(plan_schema(request, hits("logs-pod", "logs-deployment"), corpus))
    assert got == {
        "logs-pod": {"name": {"enum": ["web-1"]}, "namespace": {"enum": ["dev"]},
                     "tail": {"enum": [50]}},
    }


def test_a_required_slot_the_extractor_missed_offers_only_words_of_the_request(
    corpus: Corpus,
) -> None:
    request = parse_request({"query": "what revisions exist for checkout, in staging"})
    schema = plan_schema(request, hits("rollout-history-deployment"), corpus)
    names = branches(schema)["rollout-history-deployment"]["name"]["enum"]
    assert "checkout" in names
    assert all(n in request.query for n in names)
    assert "staging" not in names  # read as the namespace: not offered as the name


@pytest.mark.parametrize(
    "query",
    ["restart deployment api;rm -rf / in prod", "restart deployment $(whoami) in prod",
     "restart deployment `id` in prod"],
)
def test_no_name_is_read_out_of_shell_punctuation(corpus: Corpus, query: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        plan_schema(parse_request({"query": query}), hits("restart-deployment"), corpus)
    assert err.value.field == "name"
    assert str(err.value).startswith(
        "name: which deployment? give its name (the request does not say; cards offered: ")


def test_a_structured_request_gets_no_way_to_say_no_card_fits(corpus: Corpus) -> None:
    request = parse_request({"intent": "restart", "resource": "deployment", "namespace": "prod",
                             "name": "api"})
    schema = plan_schema(request, hits("restart-deployment", "restart-statefulset"), corpus)
    assert schema["properties"]["card_id"] == {"const": "restart-deployment"}
    assert schema["properties"]["slots"]["properties"] == {
        "name": {"const": "api"}, "namespace": {"const": "prod"}}


def test_free_text_whose_intent_is_unclear_may_answer_no_card_fits(corpus: Corpus) -> None:
    request = parse_request({"query": "grab 100 lines of output from the ingest deployment in dev"})
    schema = plan_schema(request, hits("logs-deployment", "get-deployment"), corpus)
    assert list(branches(schema)) == ["logs-deployment", "get-deployment", NONE_CARD]


def test_the_card_the_words_name_joins_the_candidates(corpus: Corpus) -> None:
    request = parse_request({"query": "describe service frontend -n staging"})
    schema = plan_schema(request, hits("describe-deployment", "get-service"), corpus)
    assert list(branches(schema)) == ["describe-service"]


def test_a_kind_no_card_has_is_no_match(corpus: Corpus) -> None:
    request = parse_request({"intent": "scale", "resource": "configmap", "namespace": "dev",
                             "name": "x", "params": {"replicas": 2}})
    with pytest.raises(NoMatch):
        plan_schema(request, hits("scale-deployment"), corpus)


def test_a_param_no_card_of_the_intent_takes_is_invalid_naming_it(corpus: Corpus) -> None:
    request = parse_request({"intent": "logs", "resource": "pod", "namespace": "dev",
                             "name": "web-1", "params": {"replicas": 3}})
    with pytest.raises(InvalidRequest) as err:
        plan_schema(request, hits("logs-pod"), corpus)
    assert err.value.field == "params.replicas"


@pytest.mark.parametrize(
    ("slot", "text", "extracted", "values"),
    [
        ("replicas", "scale it to 4 or five replicas", {}, [4, 5]),
        ("replicas", "scale web to 4", {"replicas": 4}, [4]),
        ("name", "restart the api deployment", {}, ["api"]),
        ("name", "restart the api deployment in prod", {"namespace": "prod"}, ["api"]),
        ("name", "restart deploy/api now", {}, ["api"]),
    ],
)
def test_grounded_values(corpus: Corpus, slot: str, text: str, extracted: dict[str, Any],
                         values: list[Any]) -> None:
    card = corpus.get("scale-deployment" if slot == "replicas" else "restart-deployment")
    assert grounded_values(slot, card.placeholders[slot], text, extracted) == values


def test_free_text_that_says_nothing_needs_a_close_card(corpus: Corpus) -> None:
    request = parse_request({"query": "make me a sandwich"})
    with pytest.raises(NoMatch):
        plan_schema(request, [Hit("delete-cronjob", 0.2, ""), Hit("get-pod", 0.18, "")], corpus)


def test_free_text_without_a_verb_is_offered_only_read_only_cards(corpus: Corpus) -> None:
    request = parse_request({"query": "deployment api in dev"})
    schema = plan_schema(request, hits("delete-deployment", "describe-deployment",
                                       "get-deployment"), corpus)
    assert list(branches(schema)) == ["describe-deployment", "get-deployment", NONE_CARD]


def test_a_duration_is_not_a_replica_count(corpus: Corpus) -> None:
    request = parse_request({"intent": "scale", "resource": "deployment", "namespace": "dev",
                             "name": "web", "query": "it has been down 10m, bring it back"})
    with pytest.raises(InvalidRequest) as err:
        plan_schema(request, hits("scale-deployment"), corpus)
    assert err.value.field == "params.replicas"
    assert str(err.value).startswith("params.replicas: give params.replicas")


def test_the_question_names_the_slot_the_request_lacks(corpus: Corpus) -> None:
    with pytest.raises(InvalidRequest) as err:
        plan_schema(parse_request({"query": "restart the api deployment"}),
                    hits("restart-deployment"), corpus)
    assert err.value.field == "namespace"
    assert str(err.value).startswith("namespace: which namespace?")


def test_a_namespace_on_a_cluster_scoped_card_is_ignored_as_the_template_does(
    corpus: Corpus,
) -> None:
    request = parse_request({"intent": "top", "resource": "node", "namespace": "dev"})
    schema = plan_schema(request, hits("top-node"), corpus)
    assert schema["properties"]["card_id"] == {"const": "top-node"}


def test_free_text_without_a_verb_may_change_what_its_values_point_at(corpus: Corpus) -> None:
    request = parse_request({"query": "worker statefulset in staging down to 1 replica"})
    schema = plan_schema(request, hits("delete-deployment", "scale-statefulset",
                                       "get-statefulset"), corpus)
    assert list(branches(schema)) == ["scale-statefulset", "get-statefulset", NONE_CARD]
