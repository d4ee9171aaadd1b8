"""The HTTP door: every route, 400/401/413, the token rules, k8sgpt's customrest shape, OpenAPI."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterator

import httpx
import jsonschema
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hyp_settings
from typer.testing import CliRunner

from rag_k8s.cli import app as cli_app
from rag_k8s.config import Settings
from tests.real_socket import serving
from rag_k8s.errors import ConfigError
from rag_k8s.request import request_schema
from rag_k8s.server import MAX_BODY_BYTES, check_bind, create_app, result_schema

TOKEN = "s3cret-token-0123456789"
RESTART_PROD = {"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api"}
RESTART_ARGV = ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"]


@lru_cache(maxsize=1)
def _result_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(result_schema())


def assert_result(body: dict[str, Any]) -> None:
    _result_validator().validate(body)


# The Host allow-list answers 421 to TestClient's default "testserver": talk to loopback.
LOCAL = "http://127.0.0.1"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings.resolve()), base_url=LOCAL) as c:
        yield c


# ---------------------------------------------------------------- routes


def test_health_reports_what_is_loaded(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "embedder", "model", "index", "planner", "uptime_seconds"}
    assert body["status"] == "ok"
    assert body["embedder"] is False  # nothing loaded until the first request needs it
    assert body["model"] is None
    assert body["planner"] == "auto"
    assert isinstance(body["index"], dict)


def test_plan_returns_the_planned_command_without_running(recording_kubectl: Any,
                                                          client: TestClient) -> None:
    r = client.post("/plan", json=RESTART_PROD)
    assert r.status_code == 200
    body = r.json()
    assert_result(body)
    assert body["status"] == "planned"
    assert body["plan"]["argv"] == RESTART_ARGV
    assert body["plan"]["command"] == "kubectl rollout restart deployment/api -n prod"
    assert body["execution"] is None
    assert recording_kubectl.calls == []


def test_k8s_exec_runs_exactly_the_planned_argv(recording_kubectl: Any, client: TestClient) -> None:
    recording_kubectl.respond(stdout="deployment.apps/api restarted\n")
    r = client.post("/k8s-exec", json=RESTART_PROD)
    assert r.status_code == 200
    body = r.json()
    assert_result(body)
    assert body["status"] == "executed"
    assert body["execution"]["stdout"] == "deployment.apps/api restarted\n"
    assert recording_kubectl.commands == [RESTART_ARGV[1:]]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"intent": "restart", "resource": "deployment", "namespace": "default", "name": "api"},
         "denied"),
        ({"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "api",
          "params": {"replicas": 3}}, "needs_confirmation"),
        ({"intent": "delete", "resource": "pod", "namespace": "dev",
          "name": "api-7d9f8b6c5-x2x9z"}, "denied"),
    ],
    ids=["namespace-not-allowed", "medium-risk-unconfirmed", "delete-pod-guardrail"],
)
def test_k8s_exec_answers_200_for_every_pipeline_status(
    recording_kubectl: Any, client: TestClient, payload: dict[str, Any], status: str
) -> None:
    r = client.post("/k8s-exec", json=payload)
    assert r.status_code == 200
    assert_result(r.json())
    assert r.json()["status"] == status
    assert recording_kubectl.calls == []


def test_k8s_exec_reports_kubectl_failure_in_the_body(recording_kubectl: Any,
                                                      client: TestClient) -> None:
    recording_kubectl.respond(stderr='Error from server (NotFound): deployments.apps "api" not found\n',
                              exit_code=1)
    r = client.post("/k8s-exec", json=RESTART_PROD)
    assert r.status_code == 200
    assert r.json()["status"] == "failed"
    assert r.json()["execution"]["exit_code"] == 1


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/plan", b"{not json", "body"),
        ("/k8s-exec", b"{not json", "body"),
        ("/plan", b"[]", "request"),
        ("/plan", json.dumps({"intent": "explode"}).encode(), "intent"),
        ("/k8s-exec", json.dumps({"intent": "get", "bogus": 1}).encode(), "bogus"),
        ("/k8s-exec", json.dumps({"intent": "scale", "params": {"replicas": "x"}}).encode(),
         "params.replicas"),
        ("/plan", json.dumps({"intent": "get", "namespace": "Prod!"}).encode(), "namespace"),
        ("/retrieve", json.dumps({"query": "pods", "k": 0}).encode(), "k"),
        ("/retrieve", json.dumps({"query": "pods", "intent": "explode"}).encode(), "intent"),
        ("/retrieve", b"{not json", "body"),
        ("/v1/completions", json.dumps({"model": "x"}).encode(), "prompt"),
    ],
)
def test_bad_json_and_invalid_requests_get_400_naming_the_field(
    client: TestClient, route: str, body: bytes, field: str
) -> None:
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid"
    assert r.json()["field"] == field


def test_invalid_k8s_exec_is_audited_and_carries_the_invalid_result(client: TestClient) -> None:
    r = client.post("/k8s-exec", json={"intent": "get", "bogus": 1})
    assert r.status_code == 400
    assert r.json()["result"]["status"] == "invalid"
    assert_result(r.json()["result"])
    log = Settings.resolve().audit_log
    assert len(log.read_text().splitlines()) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_64_kib_gets_413(client: TestClient, chunked: bool) -> None:
    big = json.dumps({"query": "x" * (MAX_BODY_BYTES + 10)}).encode()
    content: Any = iter([big[:1000], big[1000:]]) if chunked else big
    r = client.post("/plan", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"error": "too_large", "field": None,
                        "message": f"The request body is over {MAX_BODY_BYTES} bytes."}


def test_retrieve_returns_ranked_cards(client: TestClient) -> None:
    r = client.post("/retrieve", json={"query": "restart the api deployment", "k": 3})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert len(hits) == 3
    assert "restart-deployment" in [h["card_id"] for h in hits]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


# ---------------------------------------------------------------- k8sgpt customrest

K8SGPT_REQUEST = {
    "model": "rag-k8s",
    "prompt": "Simplify the following Kubernetes error message delimited by triple dashes written "
              "in --- english --- language; --- Back-off restarting failed container ---.",
    "options": {"message": "Back-off restarting failed container nginx in pod "
                           "web-7d9f8b6c5-x2x9z_default(0b1c)",
                "temperature": 0.7, "max_tokens": 150},
}


def test_k8sgpt_customrest_request_gets_the_three_fields(client: TestClient) -> None:
    r = client.post("/v1/completions", json=K8SGPT_REQUEST)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"model", "created_at", "response"}
    assert body["model"] == "rag-k8s/cards"
    created = datetime.fromisoformat(body["created_at"])
    assert created.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 60
    text = body["response"]
    assert "again and again" in text  # the CrashLoopBackOff explanation
    assert "(composed from the rag-k8s command cards; no model is loaded)" in text
    commands = [line.split(". ", 1)[1].split("  # ")[0] for line in text.splitlines() if line[:2] in
                {f"{i}." for i in range(1, 5)}]
    assert commands, text
    for command in commands:
        assert command.startswith("kubectl ")
        verb = command.split()[1]
        assert verb in {"get", "describe", "logs", "events", "top", "auth", "rollout"}, command
        assert "restart" not in command and "undo" not in command


def test_k8sgpt_prompt_alone_is_enough(client: TestClient) -> None:
    r = client.post("/v1/completions",
                    json={"model": "m", "prompt": "pod stuck in ImagePullBackOff"})
    assert r.status_code == 200
    assert "cannot pull the container image" in r.json()["response"]


# ---------------------------------------------------------------- token and bind rules


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"Authorization": f"bearer {TOKEN}"}, 200),
    ],
    ids=["missing", "wrong", "not-bearer", "right", "scheme-case-insensitive"],
)
def test_token_is_required_on_every_route_when_set(headers: dict[str, str], status: int) -> None:
    with TestClient(create_app(Settings.resolve().with_(api_token=TOKEN)), base_url=LOCAL) as c:
        assert c.get("/health", headers=headers).status_code == status
        r = c.post("/plan", json={"intent": "explode"}, headers=headers)
        assert r.status_code == (401 if status == 401 else 400)
        if status == 401:
            assert r.json()["error"] == "unauthorized"
        assert c.get("/openapi.json").status_code == 200  # the document holds no data


def test_token_from_environment_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_K8S_API_TOKEN", "from-env-0123456789")
    with TestClient(create_app(Settings.resolve()), base_url=LOCAL) as c:
        assert c.get("/health").status_code == 401
        assert c.get("/health",
                     headers={"Authorization": "Bearer from-env-0123456789"}).status_code == 200


@pytest.mark.parametrize(
    ("host", "token", "refused"),
    [
        ("127.0.0.1", None, False),
        ("localhost", None, False),
        ("::1", None, False),
        ("127.0.0.2", None, False),
        ("0.0.0.0", None, True),
        ("192.168.1.5", None, True),
        ("example.com", None, True),
        ("0.0.0.0", "tok-0123456789abcdef", False),
    ],
)
def test_non_loopback_bind_needs_a_token(host: str, token: str | None, refused: bool) -> None:
    if refused:
        with pytest.raises(ConfigError) as info:
            check_bind(host, token)
        assert str(info.value) == (
            f"Refusing to listen on {host} without an API token: set RAG_K8S_API_TOKEN "
            "(clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1."
        )
    else:
        check_bind(host, token)


def test_serve_command_refuses_0_0_0_0_without_token() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "Refusing to listen on 0.0.0.0 without an API token" in result.stderr
    assert result.stdout == ""


# ---------------------------------------------------------------- OpenAPI


def test_openapi_request_bodies_are_the_published_request_schema(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    expected = {k: v for k, v in request_schema().items() if k not in ("$schema", "$id")}
    for route in ("/plan", "/k8s-exec"):
        body = doc["paths"][route]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == expected
        ok = doc["paths"][route]["post"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"]["title"] == "rag-k8s result"
    assert set(doc["paths"]) == {"/health", "/plan", "/k8s-exec", "/retrieve", "/v1/completions"}


def test_openapi_property_based_no_server_errors(recording_kubectl: Any) -> None:
    """schemathesis generates bodies (valid and not) from the served document: never a 5xx."""
    from schemathesis.checks import not_a_server_error

    # The Host allow-list answers 421 to schemathesis' ASGI "testserver": serve it as loopback.
    inner = create_app(Settings.resolve())

    async def as_loopback(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
            scope = {**scope, "headers": [*headers, (b"host", b"127.0.0.1")]}
        await inner(scope, receive, send)

    api = schemathesis.openapi.from_asgi("/openapi.json", as_loopback)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 5
    for operation in operations:

        @given(case=operation.as_strategy())
        @hyp_settings(max_examples=10, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        check()


# ---------------------------------------------------------------- a real socket


def test_real_uvicorn_server_on_a_free_port(recording_kubectl: Any) -> None:
    with serving() as base:
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        r = httpx.post(f"{base}/k8s-exec", json=RESTART_PROD, timeout=60)
        assert r.status_code == 200
        assert r.json()["status"] == "executed"
        assert recording_kubectl.commands == [RESTART_ARGV[1:]]
        r = httpx.post(f"{base}/plan", content=b"x" * (MAX_BODY_BYTES + 1))
        assert r.status_code == 413
        r = httpx.post(f"{base}/plan", json=RESTART_PROD, timeout=60)
        assert (r.status_code, r.json()["status"]) == (200, "planned")
        r = httpx.post(f"{base}/plan", content=b"{not json", timeout=60,
                       headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]) == (400, "invalid")
        r = httpx.post(f"{base}/retrieve", json={"query": "why is my pod pending", "k": 2},
                       timeout=60)
        assert r.status_code == 200 and len(r.json()["hits"]) == 2
        r = httpx.post(f"{base}/v1/completions", json=K8SGPT_REQUEST, timeout=60)
        assert r.status_code == 200
        assert set(r.json()) == {"model", "created_at", "response"}
        assert recording_kubectl.commands == [RESTART_ARGV[1:]]  # nothing else ran kubectl


def test_real_server_with_a_token_answers_401_without_it(
    recording_kubectl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_K8S_API_TOKEN", "s3cret-token-for-tests")
    with serving() as base:
        assert httpx.post(f"{base}/k8s-exec", json=RESTART_PROD).status_code == 401
        assert httpx.get(f"{base}/health",
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.get(f"{base}/health",
                       headers={"Authorization": "Bearer s3cret-token-for-tests"})
        assert ok.status_code == 200
        assert recording_kubectl.calls == []


@pytest.mark.parametrize("route", ["/plan", "/k8s-exec"])
@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"intent": "restart", "resource": "deployment", "namespace": "prod"}, "name",
         "name: which deployment? give its name (card restart-deployment)"),
        ({"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "api"},
         "params.replicas", None),
    ],
)
def test_a_request_planning_finds_invalid_gets_400_naming_the_field(
    client: TestClient, route: str, payload: dict[str, Any], field: str, message: str | None
) -> None:
    r = client.post(route, json=payload)
    assert r.status_code == 400
    body = r.json()
    assert (body["error"], body["field"]) == ("invalid", field)
    if message is not None:
        assert body["message"] == message
    assert body["result"]["status"] == "invalid"
    assert body["result"]["execution"] is None


def test_k8sgpt_commands_name_the_pod_and_namespace_the_error_gives(client: TestClient) -> None:
    request = {**K8SGPT_REQUEST, "options": {"message": K8SGPT_REQUEST["options"]["message"]
                                             .replace("_default(", "_prod(")}}
    r = client.post("/v1/completions", json=request)
    text = r.json()["response"]
    listed = [line.split(". ", 1)[1].split("  # ")[0] for line in text.splitlines()
              if line[:2] in {f"{i}." for i in range(1, 5)}]
    assert "kubectl logs pod/web-7d9f8b6c5-x2x9z -n prod --previous" in listed or \
        "kubectl describe pod/web-7d9f8b6c5-x2x9z -n prod" in listed, listed
    assert not any("<name>" in c or "<namespace>" in c for c in listed), listed


def test_k8sgpt_never_suggests_a_namespace_the_policy_does_not_allow(client: TestClient) -> None:
    r = client.post("/v1/completions", json=K8SGPT_REQUEST)  # the pod is in `default`
    text = r.json()["response"]
    listed = [line.split(". ", 1)[1].split("  # ")[0] for line in text.splitlines()
              if line[:2] in {f"{i}." for i in range(1, 5)}]
    assert "kubectl logs pod/web-7d9f8b6c5-x2x9z -n <namespace> --previous" in listed or \
        "kubectl describe pod/web-7d9f8b6c5-x2x9z -n <namespace>" in listed, listed
    assert "-n default" not in text


def test_openapi_says_created_at_is_a_date_time(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["schemas"]["CompletionOut"]["properties"]["created_at"][
        "format"] == "date-time"


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("Back-off restarting failed container nginx in pod web-7d9f8b6c5-x2x9z_default(0b1c)",
         {"name": "web-7d9f8b6c5-x2x9z", "namespace": "default"}),
        ("the pod default/web-7d9f8b6c5-x2x9z is in CrashLoopBackOff",
         {"name": "web-7d9f8b6c5-x2x9z", "namespace": "default"}),
        ("pod/api-0 in namespace staging is Pending", {"name": "api-0", "namespace": "staging"}),
        ("StatefulSet uses the service prod/db which does not exist", {}),
        ("Simplify the following Kubernetes error message; --- Back-off restarting ---.", {}),
    ],
)
def test_k8sgpt_reads_only_the_names_an_error_spells_out(text: str, facts: dict[str, str]) -> None:
    from rag_k8s.server import _error_facts

    assert _error_facts(text) == facts
