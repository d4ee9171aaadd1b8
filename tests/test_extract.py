"""The free-text slot extractor: intent synonyms, kinds, namespaces, names and params, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from rag_k8s.planner.extract import Extraction, extract


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("restart the api deployment in prod", "restart"),
        ("bounce api in prod", "restart"),
        ("cycle the kafka statefulset", "restart"),
        ("kick the fluentd daemonset", "restart"),
        ("roll back checkout in staging", "rollback"),
        ("revert the api deployment", "rollback"),
        ("undo the last rollout of web", "rollback"),
        ("kill pod web-1 in dev", "delete"),
        ("remove the job nightly in dev", "delete"),
        ("tail the worker deployment in dev", "logs"),
        ("show logs of pod web-1 in dev", "logs"),
        ("why is pod web-1 failing in dev", "diagnose"),
        ("pod web-1 is crashlooping in dev", "diagnose"),
        ("take node-3 out for maintenance", "drain"),
        ("evacuate node-3", "drain"),
        ("scale api to 3 in staging", "scale"),
        ("I want 4 replicas of api in staging", "scale"),
        ("update image of api to nginx:1.27", "set-image"),
        ("deploy version web=nginx:1.25 to web in dev", "set-image"),
        ("who can delete pods in prod", "can-i"),
        ("am I allowed to list secrets in dev", "can-i"),
        ("can I delete deployments in staging", "can-i"),
        ("cordon node-4", "cordon"),
        ("mark node-4 unschedulable", "cordon"),
        ("uncordon node-4", "uncordon"),
        ("autoscale api in dev between 2 and 5 replicas", "autoscale"),
        ("rollout status of api in prod", "rollout-status"),
        ("has the rollout of api finished in prod", "rollout-status"),
        ("rollout history of api in prod", "rollout-history"),
        ("show the revision history of api", "rollout-history"),
        ("events in staging", "events"),
        ("top pods in prod", "top"),
        ("which nodes use the most cpu", "top"),
        ("describe deployment api in prod", "describe"),
        ("give me the details of node node-7", "describe"),
        ("list pods in prod", "get"),
        ("what pods are running in prod", "get"),
        ("make me a sandwich", None),
    ],
)
def test_extract_reads_the_intent_and_its_synonyms(text: str, intent: str | None) -> None:
    assert extract(text).intent == intent


@pytest.mark.parametrize(
    ("text", "namespace"),
    [
        ("list pods in prod", "prod"),
        ("list pods -n prod", "prod"),
        ("list pods --namespace prod", "prod"),
        ("list pods --namespace=prod", "prod"),
        ("list pods in the prod namespace", "prod"),
        ("list pods in namespace staging", "staging"),
        ("list pods from the dev ns", "dev"),
        ("staging namespace: list pods", "staging"),
        ("list pods namespace=team-a", "team-a"),
        ("in the staging namespace, restart the worker deployment", "staging"),
        ("list pods in the last 10 minutes", None),
        ("list pods", None),
    ],
)
def test_extract_reads_the_namespace(text: str, namespace: str | None) -> None:
    assert extract(text).namespace == namespace


@pytest.mark.parametrize(
    ("text", "resource", "name"),
    [
        ("restart the api deployment in prod", "deployment", "api"),
        ("restart deployment api in prod", "deployment", "api"),
        ("restart deploy/api in prod", "deployment", "api"),
        ("restart deployments.apps/api in prod", "deployment", "api"),
        ("restart sts kafka in prod", "statefulset", "kafka"),
        ("describe pod web-7d9f8b6c5-x2x9z in dev", "pod", "web-7d9f8b6c5-x2x9z"),
        ("inspect web-7d9f8b6c5-x2x9z in dev", "pod", "web-7d9f8b6c5-x2x9z"),
        ("drain node node-3", "node", "node-3"),
        ("drain node-3", "node", "node-3"),
        ("why is the checkout pod crashlooping in prod", "pod", "checkout"),
        ("show the deployment named api in dev", "deployment", "api"),
        ("list config maps in dev", "configmap", None),
        ("show persistent volume claims in prod", "pvc", None),
        ("which services exist in the prod namespace", "service", None),
        ("delete the foo namespace", "namespace", "foo"),
        ("delete namespace scratch", "namespace", "scratch"),
        ("show events for deployment api in dev", "deployment", "api"),
        ("events in staging", "event", None),
        ("bounce api in prod", None, "api"),
    ],
)
def test_extract_reads_the_kind_and_the_name(text: str, resource: str | None,
                                             name: str | None) -> None:
    got = extract(text)
    assert (got.resource, got.name) == (resource, name)


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("scale api to 3 in staging", {"replicas": 3}),
        ("scale api to zero in dev", {"replicas": 0}),
        ("scale deployment api --replicas=7 -n dev", {"replicas": 7}),
        ("give api 5 replicas in dev, scale it", {"replicas": 5}),
        ("update image of api to nginx:1.27", {"image": "nginx:1.27"}),
        ("set image api=registry.example.com/team/api:v2.1 on deployment api",
         {"container": "api", "image": "registry.example.com/team/api:v2.1"}),
        ("logs of the envoy container in pod web-1 in dev", {"container": "envoy"}),
        ("logs of pod web-1 -c envoy in dev", {"container": "envoy"}),
        ("show the last 50 lines of logs for pod web-1 in dev", {"tail": 50}),
        ("logs of pod web-1 --tail 20 -n dev", {"tail": 20}),
        ("logs of pod web-1 in dev from the last 10 minutes", {"since": "10m"}),
        ("logs of pod web-1 in dev since 2h", {"since": "2h"}),
        ("logs of pod web-1 in dev for the past hour", {"since": "1h"}),
        ("logs of pod web-1 in dev over the last 2 days", {"since": "48h"}),
        ("logs of pod web-1 in dev --since=30s", {"since": "30s"}),
        ("logs of the previous container for pod web-0 in dev", {"previous": True}),
        ("list pods with label app=web in dev", {"selector": "app=web"}),
        ("list pods -l tier=frontend,env!=test -n dev", {"selector": "tier=frontend,env!=test"}),
        ("list pods in dev as yaml", {"output": "yaml"}),
        ("list pods in dev -o wide", {"output": "wide"}),
        ("roll back api in dev to revision 3", {"to_revision": 3}),
        ("roll back api in dev --to-revision=12", {"to_revision": 12}),
        ("autoscale api in dev between 2 and 10 replicas at 70% cpu",
         {"min": 2, "max": 10, "cpu_percent": 70}),
        ("autoscale api in dev from 3 to 6 pods", {"min": 3, "max": 6}),
        ("autoscale api in dev with a maximum of 8 replicas and cpu target 50%",
         {"max": 8, "cpu_percent": 50}),
        ("who can delete pods in prod", {"verb": "delete"}),
        ("am I allowed to read configmaps in dev", {"verb": "get"}),
        ("restart api in prod", {}),
    ],
)
def test_extract_reads_params(text: str, params: dict[str, Any]) -> None:
    assert extract(text).params == params


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("restart deployment api;rm -rf / in prod",
         Extraction(intent="restart", resource="deployment", resource_explicit=True,
                    namespace="prod", name=None, kinds=("deployment",))),
        ("restart $(whoami) in prod",
         Extraction(intent="restart", namespace="prod", name=None)),
        ("logs of pod `id` in dev",
         Extraction(intent="logs", resource="pod", resource_explicit=True, namespace="dev",
                    kinds=("pod",))),
    ],
)
def test_extract_never_reads_a_name_out_of_shell_punctuation(text: str,
                                                              expected: Extraction) -> None:
    assert extract(text) == expected


def test_extract_slots_use_the_request_field_names() -> None:
    got = extract("scale the payments statefulset to 5 replicas in staging")
    assert got.slots() == {"name": "payments", "namespace": "staging",
                           "resource": "statefulset", "replicas": 5}


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("could you restart the notifications service deployment in dev?", ("service", "deployment")),
        ("restart api in prod", ()),
        ("get pods and pods in dev", ("pod",)),
    ],
)
def test_extract_lists_every_kind_the_text_names_once_in_order(text: str,
                                                                kinds: tuple[str, ...]) -> None:
    assert extract(text).kinds == kinds


@pytest.mark.parametrize(
    ("text", "params"),
    [
        # requests and limits: flag lists, "the <resource> <limit|request>", "limit <resource>"
        ("set resources on deployment web in prod --requests=cpu=100m,memory=128Mi",
         {"requests": {"cpu": "100m", "memory": "128Mi"}}),
        ("set resources of statefulset db in dev, limits cpu=1,memory=2Gi",
         {"limits": {"cpu": "1", "memory": "2Gi"}}),
        ("raise the memory limit on deployment web in prod to 1Gi", {"limits": {"memory": "1Gi"}}),
        ("limit cpu of daemonset agent in dev to 250m", {"limits": {"cpu": "250m"}}),
        ("set the cpu request of deployment web in dev to 0.5 and the memory request to 64Mi",
         {"requests": {"cpu": "0.5", "memory": "64Mi"}}),
        # ports of expose
        ("expose deployment web in prod --port=443 --target-port=8443",
         {"port": 443, "target_port": 8443}),
        ("expose the web deployment in dev on port 8080 to 80", {"port": 8080, "target_port": 80}),
        ("expose pod web-1 in dev at port 9000", {"port": 9000}),
        ("create a deployment echo in dev with image ealen/echo-server:0.9 on container port 8080",
         {"image": "ealen/echo-server:0.9", "port": 8080}),
        # what wait waits for
        ("wait for deployment web in prod --for=condition=Available", {"condition": "condition=Available"}),
        ("wait until the job migrate in dev has been completed", {"condition": "condition=Complete"}),
        ("wait for the deployment web in prod to become available", {"condition": "condition=Available"}),
        ("wait for pod web-1 in dev until it is gone", {"condition": "delete"}),
        # what explain explains
        ("explain deployment.spec.strategy.rollingUpdate",
         {"field": "deployment.spec.strategy.rollingUpdate"}),
        ("explain the ingress kind", {"field": "ingress"}),
        # ordering, field selectors and columns of a listing
        ("list pvcs in dev --sort-by=.spec.resources.requests.storage",
         {"sort_by": ".spec.resources.requests.storage"}),
        ("show the pods of prod ordered by name", {"sort_by": ".metadata.name"}),
        ("top pods in dev sorted by cpu", {"sort_by": "cpu"}),
        ("list pods in prod --field-selector=spec.nodeName=worker-2",
         {"field_selector": "spec.nodeName=worker-2"}),
        ("get pods in dev with field selector status.phase!=Running,spec.restartPolicy=Always",
         {"field_selector": "status.phase!=Running,spec.restartPolicy=Always"}),
        ("get pods in dev with the columns NAME:.metadata.name, NODE:.spec.nodeName",
         {"output": "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName"}),
        # entries of a configmap being created, and an untagged image of create
        ("create a config map flags in dev with beta=on and mode=fast",
         {"literals": {"beta": "on", "mode": "fast"}}),
        ("create configmap app in dev --from-literal=LOG_LEVEL=info", {"literals": {"LOG_LEVEL": "info"}}),
        ("create a job smoke in dev using image busybox", {"image": "busybox"}),
        ("create deployment hello -n dev --image=nginx", {"image": "nginx"}),
    ],
)
def test_extract_reads_the_value_shapes_of_the_newer_cards(text: str, params: dict[str, Any]) -> None:
    assert extract(text).params == params


def test_extract_reads_a_field_selector_said_again_in_words() -> None:
    got = extract("pods in staging whose phase is Failed, field selector status.phase=Failed")
    assert got.params == {"field_selector": "status.phase=Failed"}
    assert "phase" not in "".join(t for _, t in got.unread_text())


@pytest.mark.parametrize(
    ("text", "intent", "resource", "name", "params"),
    [
        # the words that say what explain's argument is are no name
        ("explain the field pod.spec.volumes", "explain", None, None, {"field": "pod.spec.volumes"}),
        # "create namespace X" creates X, it does not scope a creation to it
        ("create namespace team-a", "create", "namespace", "team-a", {}),
        # intents about the whole cluster read no object name from their words
        ("which api versions does the cluster serve", "api-versions", None, None, {}),
        ("list the contexts in my kubeconfig", "contexts", None, None, {}),
        # an untagged image of run is not read: its card always adds --restart=Never
        ("run a pod called web in dev with image nginx", "run", None, "web", {}),
    ],
)
def test_extract_reads_the_object_of_the_newer_intents(text: str, intent: str, resource: str | None,
                                                       name: str | None, params: dict[str, Any]) -> None:
    got = extract(text)
    assert (got.intent, got.resource, got.name, got.params) == (intent, resource, name, params)
