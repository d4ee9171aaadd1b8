"""The template planner and the planner choice, on the real cards (and the real index for free text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag_k8s.cards import Corpus, cached_corpus
from rag_k8s.config import Settings
from rag_k8s.errors import InvalidRequest, ModelNotFound, NoMatch
from rag_k8s.planner import make_plan
from rag_k8s.request import parse_request
from rag_k8s.vocab import CARDLESS_INTENTS, INTENTS


@pytest.fixture
def settings() -> Settings:
    return Settings.resolve(planner="template")


@pytest.fixture
def corpus(settings: Settings) -> Corpus:
    return cached_corpus(settings.cards_dir)


def _plan(payload: dict[str, Any], settings: Settings, corpus: Corpus) -> tuple[str, list[str]]:
    plan = make_plan(parse_request(payload), settings=settings, corpus=corpus)
    return plan.card_id, plan.argv


STRUCTURED: list[tuple[dict[str, Any], str, list[str]]] = [
    ({"intent": "get", "resource": "pods", "namespace": "prod"},
     "get-pod", ["kubectl", "get", "pod", "-n", "prod"]),
    ({"intent": "get", "resource": "deploy", "namespace": "dev", "name": "api",
      "params": {"output": "yaml"}},
     "get-deployment", ["kubectl", "get", "deployment", "api", "-n", "dev", "-o", "yaml"]),
    ({"intent": "get", "resource": "node", "params": {"selector": "role=gpu"}},
     "get-node", ["kubectl", "get", "node", "-l", "role=gpu"]),
    ({"intent": "get", "resource": "event", "namespace": "dev"},
     "events-namespace", ["kubectl", "events", "-n", "dev"]),
    ({"intent": "describe", "resource": "svc", "namespace": "staging", "name": "web"},
     "describe-service", ["kubectl", "describe", "service/web", "-n", "staging"]),
    ({"intent": "logs", "resource": "pod", "namespace": "dev", "name": "x",
      "params": {"tail": 50}},
     "logs-pod", ["kubectl", "logs", "pod/x", "-n", "dev", "--tail=50"]),
    ({"intent": "logs", "resource": "deployment", "namespace": "prod", "name": "api",
      "params": {"since": "10m", "container": "app"}},
     "logs-deployment",
     ["kubectl", "logs", "deployment/api", "-n", "prod", "-c", "app", "--since=10m"]),
    ({"intent": "events", "resource": "pod", "namespace": "dev", "name": "web-1"},
     "events-pod", ["kubectl", "events", "-n", "dev", "--for=pod/web-1"]),
    ({"intent": "diagnose", "resource": "pod", "namespace": "prod", "name": "api-1"},
     "diagnose-pod", ["kubectl", "describe", "pod/api-1", "-n", "prod"]),
    ({"intent": "diagnose", "resource": "pod", "namespace": "prod", "name": "api-1",
      "params": {"tail": 30}},
     "diagnose-pod-crashloop",
     ["kubectl", "logs", "pod/api-1", "-n", "prod", "--previous", "--tail=30"]),
    ({"intent": "top", "resource": "node"}, "top-node", ["kubectl", "top", "node"]),
    ({"intent": "can-i", "resource": "secret", "namespace": "prod", "params": {"verb": "list"}},
     "can-i-any", ["kubectl", "auth", "can-i", "list", "secret", "-n", "prod"]),
    ({"intent": "rollout-status", "resource": "sts", "namespace": "dev", "name": "db"},
     "rollout-status-statefulset",
     ["kubectl", "rollout", "status", "statefulset/db", "-n", "dev", "--watch=false"]),
    ({"intent": "rollout-history", "resource": "deployment", "namespace": "dev", "name": "api"},
     "rollout-history-deployment",
     ["kubectl", "rollout", "history", "deployment/api", "-n", "dev"]),
    ({"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api"},
     "restart-deployment", ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"]),
    ({"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "api",
      "params": {"replicas": 3}},
     "scale-deployment",
     ["kubectl", "scale", "deployment/api", "--replicas=3", "-n", "staging"]),
    ({"intent": "set-image", "resource": "ds", "namespace": "dev", "name": "agent",
      "params": {"container": "agent", "image": "ghcr.io/acme/agent:1.2"}},
     "set-image-daemonset",
     ["kubectl", "set", "image", "daemonset/agent", "agent=ghcr.io/acme/agent:1.2", "-n", "dev"]),
    ({"intent": "rollback", "resource": "deployment", "namespace": "dev", "name": "api",
      "params": {"to_revision": 2}},
     "rollback-deployment",
     ["kubectl", "rollout", "undo", "deployment/api", "-n", "dev", "--to-revision=2"]),
    ({"intent": "autoscale", "resource": "deployment", "namespace": "dev", "name": "api",
      "params": {"min": 2, "max": 10, "cpu_percent": 70}},
     "autoscale-deployment",
     ["kubectl", "autoscale", "deployment/api", "-n", "dev", "--min=2", "--max=10", "--cpu=70%"]),
    ({"intent": "cordon", "name": "node-1"}, "cordon-node", ["kubectl", "cordon", "node-1"]),
    ({"intent": "uncordon", "resource": "node", "name": "node-1"},
     "uncordon-node", ["kubectl", "uncordon", "node-1"]),
    ({"intent": "drain", "resource": "node", "name": "node-1"},
     "drain-node", ["kubectl", "drain", "node-1", "--ignore-daemonsets"]),
    ({"intent": "delete", "resource": "job", "namespace": "dev", "name": "once"},
     "delete-job", ["kubectl", "delete", "job/once", "-n", "dev"]),
    # --- the intents of issue 12 -----------------------------------------------------------
    ({"intent": "get", "resource": "deployment", "namespace": "prod", "name": "api",
      "params": {"output": "jsonpath={.spec.replicas}"}},
     "get-deployment", ["kubectl", "get", "deployment", "api", "-n", "prod", "-o",
                        "jsonpath={.spec.replicas}"]),
    ({"intent": "get", "resource": "all", "namespace": "staging"},
     "get-all", ["kubectl", "get", "all", "-n", "staging"]),
    ({"intent": "get", "resource": "pod", "namespace": "prod", "params": {"show_labels": True}},
     "get-pod-labels", ["kubectl", "get", "pod", "-n", "prod", "--show-labels=true"]),
    ({"intent": "get", "resource": "pod", "namespace": "dev",
      "params": {"sort_by": ".metadata.creationTimestamp"}},
     "get-pod-sorted", ["kubectl", "get", "pod", "-n", "dev",
                        "--sort-by=.metadata.creationTimestamp"]),
    ({"intent": "get", "resource": "pod", "namespace": "dev",
      "params": {"field_selector": "status.phase=Pending"}},
     "get-pod-field-selector", ["kubectl", "get", "pod", "-n", "dev",
                                "--field-selector=status.phase=Pending"]),
    ({"intent": "logs", "resource": "pod", "namespace": "prod",
      "params": {"selector": "app=web", "tail": 20}},
     "logs-selector", ["kubectl", "logs", "-l", "app=web", "-n", "prod", "--prefix", "--tail=20"]),
    ({"intent": "logs", "resource": "pod", "namespace": "prod", "name": "web-0",
      "params": {"since_time": "2026-12-02T10:00:00Z"}},
     "logs-pod-since-time", ["kubectl", "logs", "pod/web-0", "-n", "prod",
                             "--since-time=2026-12-02T10:00:00Z"]),
    ({"intent": "top", "resource": "pod", "namespace": "prod", "params": {"sort_by": "memory"}},
     "top-pod-sorted", ["kubectl", "top", "pod", "-n", "prod", "--sort-by=memory"]),
    ({"intent": "can-i", "namespace": "dev"}, "can-i-list",
     ["kubectl", "auth", "can-i", "--list", "-n", "dev"]),
    ({"intent": "explain", "resource": "deployment"}, "explain-field",
     ["kubectl", "explain", "deployment"]),
    ({"intent": "explain", "params": {"field": "pod.spec.containers", "recursive": True}},
     "explain-field", ["kubectl", "explain", "pod.spec.containers", "--recursive=true"]),
    ({"intent": "api-resources", "params": {"namespaced": True}}, "api-resources",
     ["kubectl", "api-resources", "--namespaced=true"]),
    ({"intent": "api-versions"}, "api-versions", ["kubectl", "api-versions"]),
    ({"intent": "version"}, "version", ["kubectl", "version"]),
    ({"intent": "cluster-info"}, "cluster-info", ["kubectl", "cluster-info"]),
    ({"intent": "contexts"}, "contexts-list", ["kubectl", "config", "get-contexts"]),
    ({"intent": "wait", "resource": "deployment", "namespace": "staging", "name": "api",
      "params": {"condition": "condition=Available"}, "constraints": {"timeout": 40}},
     "wait-deployment", ["kubectl", "wait", "deployment/api", "-n", "staging",
                         "--for=condition=Available", "--timeout=40s"]),
    ({"intent": "label", "resource": "deployment", "namespace": "dev", "name": "api",
      "params": {"labels": {"team": "payments", "tier": "backend"}}},
     "label-deployment", ["kubectl", "label", "deployment", "api", "team=payments",
                          "tier=backend", "-n", "dev"]),
    ({"intent": "label", "resource": "pod", "namespace": "dev", "name": "web-0",
      "params": {"remove_labels": ["canary"]}},
     "unlabel-pod", ["kubectl", "label", "pod", "web-0", "canary-", "-n", "dev"]),
    ({"intent": "annotate", "resource": "service", "namespace": "staging", "name": "api",
      "params": {"annotations": ["example.com/owner=team-a"]}},
     "annotate-service", ["kubectl", "annotate", "service", "api", "example.com/owner=team-a",
                          "-n", "staging"]),
    ({"intent": "taint", "name": "worker-2", "params": {"taint": "dedicated=db:NoSchedule"}},
     "taint-node", ["kubectl", "taint", "nodes", "worker-2", "dedicated=db:NoSchedule"]),
    ({"intent": "taint", "name": "worker-2", "params": {"remove_taint": "dedicated"}},
     "untaint-node", ["kubectl", "taint", "nodes", "worker-2", "dedicated-"]),
    ({"intent": "set-env", "namespace": "dev", "name": "api",
      "params": {"env": {"LOG_LEVEL": "debug"}}},
     "set-env-deployment", ["kubectl", "set", "env", "deployment/api", "LOG_LEVEL=debug", "-n",
                            "dev"]),
    ({"intent": "set-env", "resource": "statefulset", "namespace": "dev", "name": "db",
      "params": {"remove_env": ["DEBUG"]}},
     "unset-env-statefulset", ["kubectl", "set", "env", "statefulset/db", "DEBUG-", "-n", "dev"]),
    ({"intent": "set-resources", "namespace": "staging", "name": "api",
      "params": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": "memory=512Mi"}},
     "set-resources-deployment",
     ["kubectl", "set", "resources", "deployment/api", "-n", "staging",
      "--requests=cpu=250m,memory=256Mi", "--limits=memory=512Mi"]),
    ({"intent": "set-image", "resource": "deployment", "namespace": "dev", "name": "api",
      "params": {"container": "*", "image": "nginx:1.27"}},
     "set-image-deployment", ["kubectl", "set", "image", "deployment/api", "*=nginx:1.27", "-n",
                              "dev"]),
    ({"intent": "pause", "namespace": "staging", "name": "api"}, "pause-deployment",
     ["kubectl", "rollout", "pause", "deployment/api", "-n", "staging"]),
    ({"intent": "resume", "namespace": "staging", "name": "api"}, "resume-deployment",
     ["kubectl", "rollout", "resume", "deployment/api", "-n", "staging"]),
    ({"intent": "create", "resource": "namespace", "name": "team-a"}, "create-namespace",
     ["kubectl", "create", "namespace", "team-a"]),
    ({"intent": "create", "resource": "configmap", "namespace": "dev", "name": "flags",
      "params": {"literals": {"beta": "on", "mode": "fast"}}},
     "create-configmap", ["kubectl", "create", "configmap", "flags", "--from-literal=beta=on",
                          "--from-literal=mode=fast", "-n", "dev"]),
    ({"intent": "create", "resource": "job", "namespace": "dev", "name": "nightly-now",
      "params": {"from": "cronjob/nightly"}},
     "create-job-from-cronjob", ["kubectl", "create", "job", "nightly-now",
                                 "--from=cronjob/nightly", "-n", "dev"]),
    ({"intent": "create", "resource": "service", "namespace": "dev", "name": "web",
      "params": {"service_type": "nodeport", "port": 80, "target_port": 8080}},
     "create-service", ["kubectl", "create", "service", "nodeport", "web", "--tcp=80:8080", "-n",
                        "dev"]),
    ({"intent": "expose", "namespace": "dev", "name": "api", "params": {"port": 80}},
     "expose-deployment", ["kubectl", "expose", "deployment", "api", "--port=80", "-n", "dev"]),
    ({"intent": "run", "namespace": "dev", "name": "echo", "params": {"image": "nginx:1.27"}},
     "run-pod", ["kubectl", "run", "echo", "--image=nginx:1.27", "--restart=Never", "-n", "dev"]),
    ({"intent": "patch", "resource": "service", "namespace": "staging", "name": "api",
      "params": {"labels": {"version": "v2"}}},
     "patch-service-selector", ["kubectl", "patch", "service", "api", "-n", "staging",
                                "--type=merge", "-p", '{"spec":{"selector":{"version":"v2"}}}']),
    ({"intent": "patch", "resource": "pvc", "namespace": "dev", "name": "data-db-0",
      "params": {"storage": "20Gi"}},
     "patch-pvc-storage", ["kubectl", "patch", "pvc", "data-db-0", "-n", "dev", "-p",
                           '{"spec":{"resources":{"requests":{"storage":"20Gi"}}}}']),
    ({"intent": "drain", "name": "worker-2", "params": {"delete_emptydir_data": True},
      "constraints": {"timeout": 120}},
     "drain-node-emptydir", ["kubectl", "drain", "worker-2", "--ignore-daemonsets",
                             "--delete-emptydir-data=true", "--timeout=120s"]),
    ({"intent": "scale", "namespace": "staging", "name": "api",
      "params": {"current_replicas": 3, "replicas": 5}},
     "scale-deployment-if-current", ["kubectl", "scale", "deployment/api",
                                     "--current-replicas=3", "--replicas=5", "-n", "staging"]),
    ({"intent": "cordon", "params": {"nodes": ["worker-1", "worker-2"]}}, "cordon-nodes",
     ["kubectl", "cordon", "worker-1", "worker-2"]),
    ({"intent": "uncordon", "params": {"nodes": ["worker-1", "worker-2"]}}, "uncordon-nodes",
     ["kubectl", "uncordon", "worker-1", "worker-2"]),
]


def test_structured_table_covers_every_intent() -> None:
    # undo replays an audited inverse; apply and diff act on `files` (no card).
    assert {p["intent"] for p, _, _ in STRUCTURED} == set(INTENTS) - CARDLESS_INTENTS


@pytest.mark.parametrize(("payload", "card_id", "argv"), STRUCTURED,
                         ids=[c for _, c, _ in STRUCTURED])
def test_structured_request_picks_the_card_and_renders_its_slots(
    payload: dict[str, Any], card_id: str, argv: list[str], settings: Settings, corpus: Corpus
) -> None:
    assert _plan(payload, settings, corpus) == (card_id, argv)


FREE_TEXT: list[tuple[str, str, list[str]]] = [
    ("bounce the api deployment in prod",
     "restart-deployment", ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"]),
    ("cycle the kafka statefulset in staging",
     "restart-statefulset", ["kubectl", "rollout", "restart", "statefulset/kafka", "-n", "staging"]),
    ("kick api in prod",
     "restart-deployment", ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"]),
    ("roll back the checkout deployment in staging",
     "rollback-deployment", ["kubectl", "rollout", "undo", "deployment/checkout", "-n", "staging"]),
    ("revert api in dev to revision 3",
     "rollback-deployment",
     ["kubectl", "rollout", "undo", "deployment/api", "-n", "dev", "--to-revision=3"]),
    ("undo the last rollout of web in dev",
     "rollback-deployment", ["kubectl", "rollout", "undo", "deployment/web", "-n", "dev"]),
    ("kill pod web-7d9f8b6c5-x2x9z in dev",
     "delete-pod", ["kubectl", "delete", "pod/web-7d9f8b6c5-x2x9z", "-n", "dev"]),
    ("remove the job nightly-report in staging",
     "delete-job", ["kubectl", "delete", "job/nightly-report", "-n", "staging"]),
    ("tail the last 50 lines of pod x in dev",
     "logs-pod", ["kubectl", "logs", "pod/x", "-n", "dev", "--tail=50"]),
    ("show logs of the api deployment in prod from the last 10 minutes",
     "logs-deployment", ["kubectl", "logs", "deployment/api", "-n", "prod", "--since=10m"]),
    ("why is pod web-7d9f8b6c5-x2x9z failing in prod",
     "diagnose-pod", ["kubectl", "describe", "pod/web-7d9f8b6c5-x2x9z", "-n", "prod"]),
    ("pod web-1 in dev is crashlooping",
     "diagnose-pod-crashloop", ["kubectl", "logs", "pod/web-1", "-n", "dev", "--previous"]),
    ("take node-3 out for maintenance",
     "drain-node", ["kubectl", "drain", "node-3", "--ignore-daemonsets"]),
    ("evacuate node node-4", "drain-node", ["kubectl", "drain", "node-4", "--ignore-daemonsets"]),
    ("scale deploy/api to 3 -n staging",
     "scale-deployment", ["kubectl", "scale", "deployment/api", "--replicas=3", "-n", "staging"]),
    ("I want 5 replicas of the web statefulset in dev",
     "scale-statefulset", ["kubectl", "scale", "statefulset/web", "--replicas=5", "-n", "dev"]),
    ("update image of deployment api to nginx:1.27 for container api in dev",
     "set-image-deployment",
     ["kubectl", "set", "image", "deployment/api", "api=nginx:1.27", "-n", "dev"]),
    ("deploy version api=ghcr.io/acme/api:2.0 to the api deployment in staging",
     "set-image-deployment",
     ["kubectl", "set", "image", "deployment/api", "api=ghcr.io/acme/api:2.0", "-n", "staging"]),
    ("who can delete pods in prod",
     "can-i-any", ["kubectl", "auth", "can-i", "delete", "pod", "-n", "prod"]),
    ("am I allowed to list secrets in dev",
     "can-i-any", ["kubectl", "auth", "can-i", "list", "secret", "-n", "dev"]),
    ("get pods in namespace dev with label app=web",
     "get-pod", ["kubectl", "get", "pod", "-n", "dev", "-l", "app=web"]),
    ("list deployments in the prod namespace -o wide",
     "get-deployment", ["kubectl", "get", "deployment", "-n", "prod", "-o", "wide"]),
    ("describe the hpa api in staging",
     "describe-hpa", ["kubectl", "describe", "hpa/api", "-n", "staging"]),
    ("events in staging", "events-namespace", ["kubectl", "events", "-n", "staging"]),
    ("top pods in prod", "top-pod", ["kubectl", "top", "pod", "-n", "prod"]),
    ("rollout status of deployment api in prod",
     "rollout-status-deployment",
     ["kubectl", "rollout", "status", "deployment/api", "-n", "prod", "--watch=false"]),
    ("show rollout history of the api deployment in staging",
     "rollout-history-deployment",
     ["kubectl", "rollout", "history", "deployment/api", "-n", "staging"]),
    ("autoscale the api deployment in staging between 2 and 10 replicas at 70% cpu",
     "autoscale-deployment",
     ["kubectl", "autoscale", "deployment/api", "-n", "staging", "--min=2", "--max=10",
      "--cpu=70%"]),
    ("mark node-2 unschedulable", "cordon-node", ["kubectl", "cordon", "node-2"]),
    ("uncordon node node-2", "uncordon-node", ["kubectl", "uncordon", "node-2"]),
    ("delete the scratch namespace", "delete-namespace",
     ["kubectl", "delete", "namespace/scratch"]),
]


# The intents free text covered before issue 12; the new intents' phrasings are the faithfulness
# helper's kubectl-help evaluation set.
FIRST_INTENTS = ("get", "describe", "logs", "events", "diagnose", "top", "can-i",
                 "rollout-status", "rollout-history", "restart", "scale", "set-image", "rollback",
                 "autoscale", "cordon", "uncordon", "drain", "delete")


def test_free_text_table_covers_every_intent(corpus: Corpus) -> None:
    assert {corpus.get(c).intent for _, c, _ in FREE_TEXT} == set(FIRST_INTENTS)


@pytest.mark.parametrize(("query", "card_id", "argv"), FREE_TEXT, ids=[q for q, _, _ in FREE_TEXT])
def test_free_text_request_is_read_and_planned(
    query: str, card_id: str, argv: list[str], settings: Settings, corpus: Corpus
) -> None:
    assert _plan({"query": query}, settings, corpus) == (card_id, argv)


@pytest.mark.parametrize(
    ("payload", "field", "problem"),
    [
        ({"intent": "restart", "resource": "deployment", "namespace": "prod"},
         "name", "which deployment? give its name"),
        ({"query": "restart the deployment in prod"}, "name", "which deployment? give its name"),
        ({"intent": "logs", "resource": "pod", "name": "web-1"}, "namespace", "which namespace?"),
        ({"query": "show logs of pod web-1"}, "namespace", "which namespace?"),
        ({"intent": "scale", "resource": "deployment", "namespace": "dev", "name": "api"},
         "params.replicas", "how many replicas?"),
        ({"query": "update the image of deployment api in dev to nginx:1.27"},
         "params.container", "which container?"),
        ({"intent": "drain", "resource": "node"}, "name", "which node? give its name"),
        ({"query": "delete web-1 in dev"}, "resource",
         "which kind of resource should be deleted? name it, e.g. 'delete pod web-1 in dev'"),
        ({"query": "restart deployment api;rm -rf / in prod"},
         "query", 'one request, one action: the text after ";" ("rm -rf / in prod") is a second '
                  "command; nothing was planned. Send each action as its own request"),
        ({"query": "scale api in dev to 20000 replicas"},
         "params.replicas", "20000 is out of range (maximum 10000)"),
        ({"intent": "get", "resource": "pod", "namespace": "dev", "params": {"replicas": 2}},
         "params.replicas", "get-pod does not take replicas (it takes: selector, output)"),
    ],
)
def test_missing_or_bad_slot_is_invalid_with_a_question(
    payload: dict[str, Any], field: str, problem: str, settings: Settings, corpus: Corpus
) -> None:
    with pytest.raises(InvalidRequest) as err:
        _plan(payload, settings, corpus)
    assert (err.value.field, err.value.problem) == (field, problem)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"intent": "scale", "resource": "configmap", "namespace": "dev", "name": "x",
          "params": {"replicas": 2}},
         "no command card does scale on configmap; cards for scale cover: "
         "deployment, replicaset, statefulset"),
        ({"intent": "logs", "resource": "node", "name": "node-1"},
         "no command card does logs on node; cards for logs cover: daemonset, deployment, job, pod, "
         "statefulset"),
        ({"query": "make me a sandwich"},
         "no command card fits this request; say what to do and to what, "
         "e.g. 'restart the api deployment in prod'"),
    ],
)
def test_request_no_card_fits_is_no_match(
    payload: dict[str, Any], message: str, settings: Settings, corpus: Corpus
) -> None:
    with pytest.raises(NoMatch) as err:
        _plan(payload, settings, corpus)
    assert str(err.value) == message


def test_structured_plan_reports_its_card_as_source_and_its_risk(
    settings: Settings, corpus: Corpus
) -> None:
    plan = make_plan(parse_request({"intent": "drain", "name": "node-1"}),
                     settings=settings, corpus=corpus)
    assert (plan.planner, plan.sources, plan.risk_level) == (
        "template", [{"card_id": "drain-node", "score": 1.0}], "high")
    assert plan.rationale == "Template planner: the drain card for node."


def test_free_text_plan_reports_the_retrieval_hits_it_was_offered(
    settings: Settings, corpus: Corpus
) -> None:
    plan = make_plan(parse_request({"query": "why is pod web-1 in dev crashlooping"}),
                     settings=settings, corpus=corpus)
    ids = [s["card_id"] for s in plan.sources]
    assert ids[0] == plan.card_id == "diagnose-pod-crashloop"
    assert set(ids) == {"diagnose-pod-crashloop", "diagnose-pod"}
    assert all(0 < s["score"] <= 1 for s in plan.sources)


def _unloadable_model(tmp_path: Path) -> Path:
    """Stand-in model directory: it has a config.json (so it counts as available) but no weights,
    so any attempt to load it fails. A plan that succeeds from it proves no model was used."""
    model = tmp_path / "unloadable-model-stand-in"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return model


@pytest.mark.parametrize(
    "payload",
    [
        {"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api"},
        {"query": "restart the api deployment in prod"},
        {"query": "drain node-3"},
    ],
)
def test_auto_takes_the_template_path_for_a_determined_request(
    payload: dict[str, Any], tmp_path: Path, corpus: Corpus
) -> None:
    settings = Settings.resolve(planner="auto", model=str(_unloadable_model(tmp_path)))
    plan = make_plan(parse_request(payload), settings=settings, corpus=corpus)
    assert plan.planner == "template"


def test_auto_asks_for_a_missing_slot_instead_of_calling_a_model(
    tmp_path: Path, corpus: Corpus
) -> None:
    settings = Settings.resolve(planner="auto", model=str(_unloadable_model(tmp_path)))
    with pytest.raises(InvalidRequest) as err:
        make_plan(parse_request({"query": "restart the deployment in prod"}),
                  settings=settings, corpus=corpus)
    assert err.value.field == "name"


def test_auto_without_a_model_plans_an_undetermined_request_with_the_template(
    tmp_path: Path, corpus: Corpus
) -> None:
    settings = Settings.resolve(planner="auto", model=str(tmp_path / "no-such-model"))
    plan = make_plan(parse_request({"query": "bounce api in prod"}),
                     settings=settings, corpus=corpus)
    assert (plan.planner, plan.argv) == (
        "template", ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"])
    assert "no kind was named; assumed deployment" in plan.rationale


def test_auto_falls_back_to_the_template_when_the_model_cannot_load(
    tmp_path: Path, corpus: Corpus
) -> None:
    settings = Settings.resolve(planner="auto", model=str(_unloadable_model(tmp_path)))
    plan = make_plan(parse_request({"query": "bounce api in prod"}),
                     settings=settings, corpus=corpus)
    assert (plan.planner, plan.argv) == (
        "template", ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"])
    assert "The MLX planner failed first: cannot load the MLX model" in plan.rationale


def test_mlx_planner_with_a_missing_model_raises_a_clear_error(
    tmp_path: Path, corpus: Corpus
) -> None:
    missing = tmp_path / "no-such-model"
    settings = Settings.resolve(planner="mlx", model=str(missing))
    with pytest.raises(ModelNotFound) as err:
        make_plan(parse_request({"intent": "get", "resource": "pod", "namespace": "dev"}),
                  settings=settings, corpus=corpus)
    assert str(err.value).startswith(f"model directory {missing} does not exist")
