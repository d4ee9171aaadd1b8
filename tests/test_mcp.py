"""The MCP door, driven over stdio by the `mcp` package's own client, as Claude Code would."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from rag_k8s.request import request_schema
from rag_k8s.server import result_schema

RAG_K8S = str(Path(sys.executable).parent / "rag-k8s")
RESTART_PROD = {"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api"}


def _params() -> StdioServerParameters:
    # The autouse fixture set the RAG_K8S_* variables of this test; the server inherits them.
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("RAG_K8S_", "RECORDING_KUBECTL_", "HF_", "TRANSFORMERS_"))}
    return StdioServerParameters(command=RAG_K8S, args=["mcp"], env=env)


def _session(fn: Any) -> Any:
    """Run `fn(client)` against a fresh `rag-k8s mcp` process over stdio; return its value."""

    async def main() -> Any:
        async with Client(_params(), read_timeout_seconds=120) as client:
            return await fn(client)

    return anyio.run(main)


def test_tools_are_listed_with_hints_and_the_request_schema() -> None:
    async def list_tools(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = {t.name: t for t in _session(list_tools)}
    assert sorted(tools) == ["k8s_exec", "kubectl", "plan", "retrieve"]
    expected = {k: v for k, v in request_schema().items() if k not in ("$schema", "$id")}
    assert tools["plan"].input_schema == expected
    assert tools["k8s_exec"].input_schema == expected
    assert tools["retrieve"].input_schema["required"] == ["query"]
    hints = {name: (t.annotations.read_only_hint, t.annotations.destructive_hint)
             for name, t in tools.items()}
    assert hints == {"plan": (True, False), "k8s_exec": (False, True), "kubectl": (False, True),
                     "retrieve": (True, False)}


def test_each_tool_is_called_over_stdio(recording_kubectl: Any) -> None:
    recording_kubectl.respond(stdout="deployment.apps/api restarted\n")

    async def call_all(client: Client) -> dict[str, Any]:
        out = {}
        for name, args in (
            ("plan", RESTART_PROD),
            ("k8s_exec", RESTART_PROD),
            ("retrieve", {"query": "restart the api deployment", "k": 3}),
            ("k8s_exec", {"intent": "get", "bogus": 1}),
            ("k8s_exec", {"intent": "scale", "resource": "deployment", "namespace": "staging",
                          "name": "api", "params": {"replicas": 3}}),
        ):
            result = await client.call_tool(name, args)
            assert result.is_error is False, result.content
            # The text block carries the same JSON as the structured content.
            assert json.loads(result.content[0].text) == result.structured_content
            out[f"{name}:{len(out)}"] = result.structured_content
        return out

    results = list(_session(call_all).values())
    validator = jsonschema.Draft202012Validator(result_schema())
    plan_, executed, retrieved, invalid, unconfirmed = results
    for r in (plan_, executed, invalid, unconfirmed):
        validator.validate(r)
    assert plan_["status"] == "planned"
    assert plan_["plan"]["argv"] == ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"]
    assert executed["status"] == "executed"
    assert executed["execution"]["stdout"] == "deployment.apps/api restarted\n"
    assert [h["card_id"] for h in retrieved["hits"]][:3] and len(retrieved["hits"]) == 3
    assert "restart-deployment" in [h["card_id"] for h in retrieved["hits"]]
    assert invalid["status"] == "invalid"
    assert invalid["decision"]["reasons"] == ["bogus: unknown field"]
    assert unconfirmed["status"] == "needs_confirmation"
    # Only the one confirmed-by-risk call ran kubectl.
    assert recording_kubectl.commands == [["rollout", "restart", "deployment/api", "-n", "prod"]]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"query": ""}, "query: give 1 to 2000 characters of text"),
        ({"query": "pods", "k": 9}, "k: an integer from 2 to 4"),
        ({"query": "pods", "intent": "explode"}, "intent: 'explode' is not one of"),
    ],
)
def test_retrieve_tool_reports_bad_arguments(args: dict[str, Any], error: str) -> None:
    async def call(client: Client) -> Any:
        return (await client.call_tool("retrieve", args)).structured_content

    body = _session(call)
    assert body["hits"] == []
    assert body["error"].startswith(error)
