"""The MCP door: tools `plan`, `k8s_exec`, `kubectl` (the argv door) and `retrieve` on the
official `mcp` 2.x `MCPServer`.

stdio by default (nothing but protocol on stdout: logging goes to stderr); `--http` serves
streamable HTTP on 127.0.0.1. The input schema of `plan` and `k8s_exec` is the published request
schema itself, and the arguments reach `parse_request` untouched, so an unknown or mistyped field
gives the same `status: invalid` result as every other door.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from .config import Settings
from .request import request_schema

log = logging.getLogger(__name__)

RETRIEVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["query"],
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 2000,
                  "description": "Free text describing the task or the error."},
        "intent": {"type": "string", "description": "Only cards of this intent."},
        "resource": {"type": "string", "description": "Only cards for this kind."},
        "k": {"type": "integer", "minimum": 2, "maximum": 4, "default": 4},
    },
}

PLAN_DESCRIPTION = (
    "Plan a kubectl command from a request (intent/resource/namespace/name or free-text query) and "
    "check it against the org policy and guardrails. Never runs kubectl. Returns the rag-k8s result: "
    "status, plan (command, argv, risk_level), decision (allowed, requires_confirmation, reasons, "
    "suggestion)."
)
EXEC_DESCRIPTION = (
    "Plan, check and run one kubectl command. Medium/high risk actions return "
    "status needs_confirmation unless constraints.confirm is true: show the command to the user and "
    "ask before confirming. constraints.dryRun previews without changing the cluster. Returns the "
    "rag-k8s result with the kubectl output in execution. intent diagnose runs a read-only "
    "runbook and returns `findings` (worst first: severity, reason, summary, quoted evidence, "
    "and a suggested action already judged by the policy, never run)."
)
KUBECTL_DESCRIPTION = (
    "Run one exact kubectl command, given as an argv list starting with \"kubectl\" (the argv "
    "door). It is judged exactly like a planned command: org policy, guardrails, confirmation by "
    "risk (constraints.confirm), dry-run (constraints.dryRun) and audit. Refused: credential or "
    "context flags, namespaces and verbs outside the policy, secret contents."
)
RETRIEVE_DESCRIPTION = "List the curated command cards nearest a query, with scores and snippets."


def _mcp_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def kubectl_schema() -> dict[str, Any]:
    """The `kubectl` tool's input: the request schema's `argv` and `constraints` only."""
    props = request_schema()["properties"]
    return {"type": "object", "additionalProperties": False, "required": ["argv"],
            "properties": {"argv": props["argv"], "constraints": props["constraints"]}}


def build_server(settings: Settings | None = None) -> Any:
    """The `MCPServer` with the three tools, for these settings."""
    import anyio
    from mcp.server import MCPServer
    from mcp.server.mcpserver.tools.base import Tool
    from mcp_types import ToolAnnotations

    from . import __version__

    settings = settings or Settings.resolve()

    class RawArgumentsTool(Tool):
        """A tool whose function receives the arguments dict as sent, validated by our schema."""

        async def run(self, arguments: dict[str, Any], context: Any,
                      convert_result: bool = False) -> Any:
            result = await anyio.to_thread.run_sync(self.fn, dict(arguments))
            return self.fn_metadata.convert_result(result) if convert_result else result

    def plan_tool(arguments: dict[str, Any]) -> dict[str, Any]:
        from . import tool

        return tool.plan(arguments, settings=settings)

    def exec_tool(arguments: dict[str, Any]) -> dict[str, Any]:
        from . import tool

        return tool.k8s_exec(arguments, settings=settings)

    def kubectl_tool(arguments: dict[str, Any]) -> dict[str, Any]:
        from . import tool

        # The arguments reach parse_request as sent: an extra field is `invalid`, naming it.
        return tool.k8s_exec(arguments, settings=settings)

    def retrieve_tool(arguments: dict[str, Any]) -> dict[str, Any]:
        from .errors import RagK8sError
        from .retrieve import retrieve
        from .vocab import INTENTS, normalize_resource

        query = arguments.get("query")
        k = arguments.get("k", 4)
        if not isinstance(query, str) or not query.strip() or len(query) > 2000:
            return {"error": "query: give 1 to 2000 characters of text", "hits": []}
        if not isinstance(k, int) or isinstance(k, bool) or not 2 <= k <= 4:
            return {"error": "k: an integer from 2 to 4", "hits": []}
        intent = arguments.get("intent")
        if intent is not None and intent not in INTENTS:
            return {"error": f"intent: {intent!r} is not one of {', '.join(INTENTS)}", "hits": []}
        resource = arguments.get("resource")
        if resource is not None:
            resource = normalize_resource(str(resource))
            if resource is None:
                return {"error": f"resource: {arguments['resource']!r} is not a known kind",
                        "hits": []}
        try:
            hits = retrieve(query, intent, resource, k, settings=settings)
        except RagK8sError as e:
            return {"error": str(e), "hits": []}
        return {"hits": [h.to_dict() for h in hits]}

    def make(fn: Any, name: str, title: str, description: str, schema: dict[str, Any],
             annotations: ToolAnnotations) -> Tool:
        base = Tool.from_function(fn, name=name, title=title, description=description,
                                  annotations=annotations, structured_output=True)
        fields = {key: getattr(base, key) for key in Tool.model_fields}
        fields["parameters"] = schema
        return RawArgumentsTool(**fields)

    request = _mcp_schema(request_schema())
    tools = [
        make(plan_tool, "plan", "Plan a kubectl command", PLAN_DESCRIPTION, request,
             ToolAnnotations(title="Plan a kubectl command", read_only_hint=True,
                             destructive_hint=False, idempotent_hint=True, open_world_hint=False)),
        make(exec_tool, "k8s_exec", "Run a kubectl command", EXEC_DESCRIPTION, request,
             ToolAnnotations(title="Run a kubectl command", read_only_hint=False,
                             destructive_hint=True, idempotent_hint=False, open_world_hint=True)),
        make(kubectl_tool, "kubectl", "Run an exact kubectl argv", KUBECTL_DESCRIPTION,
             kubectl_schema(),
             ToolAnnotations(title="Run an exact kubectl argv", read_only_hint=False,
                             destructive_hint=True, idempotent_hint=False, open_world_hint=True)),
        make(retrieve_tool, "retrieve", "Find command cards", RETRIEVE_DESCRIPTION,
             RETRIEVE_SCHEMA,
             ToolAnnotations(title="Find command cards", read_only_hint=True,
                             destructive_hint=False, idempotent_hint=True, open_world_hint=False)),
    ]
    return MCPServer(
        name="rag-k8s",
        version=__version__,
        instructions=(
            "Kubernetes actions through curated command cards, org policy and guardrails. Call "
            "`plan` first to preview; call `k8s_exec` to run. When a result says "
            "needs_confirmation, show the command and its risk to the user and only then call "
            "k8s_exec again with constraints.confirm=true."
        ),
        tools=tools,
        log_level="WARNING",
    )


def run(settings: Settings | None = None, *, http: bool = False, port: int = 8001) -> None:
    """Serve MCP on stdio, or on streamable HTTP at 127.0.0.1:port."""
    # stdout belongs to the protocol: every diagnostic goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, force=True)
    server = build_server(settings)
    from . import execute

    _stop_kubectl_on_signals()
    try:
        if http:
            server.run("streamable-http", host="127.0.0.1", port=port)
        else:
            _stop_kubectl_when_stdin_closes()
            server.run("stdio")
    finally:
        execute.shutdown("the MCP server is shutting down")  # waits for in-flight audit lines


def _stop_kubectl_on_signals() -> None:
    """SIGINT/SIGTERM/SIGHUP first stop the kubectl of calls in flight (they answer
    `interrupted`, audited): the event loop would otherwise wait for their threads."""
    import signal

    from . import execute

    def stop(signum: int, frame: Any) -> None:
        execute.begin_shutdown(f"the MCP server is shutting down ({signal.Signals(signum).name})")
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


def _stop_kubectl_when_stdin_closes() -> None:
    """Put a pipe in front of stdin, so that the client closing it stops the kubectl of calls in
    flight before the transport sees the end (which would wait for them to finish)."""
    import os
    import threading

    from . import execute

    real_stdin = os.dup(0)
    read_end, write_end = os.pipe()
    os.dup2(read_end, 0)
    os.close(read_end)

    def pump() -> None:
        try:
            while chunk := os.read(real_stdin, 65536):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(write_end, view):]
        except OSError:
            pass
        execute.begin_shutdown("the MCP client closed stdin")
        os.close(write_end)

    threading.Thread(target=pump, name="rag-k8s-stdin", daemon=True).start()
