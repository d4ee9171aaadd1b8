"""The HTTP door (CONTRACT §9): FastAPI on uvicorn, one route per pipeline entry point.

`create_app(settings)` builds the app (tests serve it on a free port); `serve()` runs it.
The request body of /plan and /k8s-exec is the published request schema, validated by the same
`parse_request` every door uses; /v1/completions is k8sgpt's `customrest` backend contract.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import execute
from .config import Settings
from . import jsonsafe
from .errors import ConfigError, InvalidRequest, RagK8sError
from .redact import redact
from .request import parse_request, request_schema

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Paths served without the token: the OpenAPI document holds no data.
OPEN_PATHS = frozenset({"/openapi.json"})
MIN_TOKEN_CHARS = 16
# Routes that only take POST; GET and CORS preflights (OPTIONS) get 405 with no CORS headers.
POST_ROUTES = frozenset({"/plan", "/k8s-exec", "/retrieve", "/v1/completions"})
# POST bodies checked for JSON safety in the middleware; /k8s-exec checks its own, so that a
# request it cannot read is still audited.
_CHECKED_BODIES = frozenset({"/plan", "/retrieve", "/v1/completions"})
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]", ""})


@lru_cache(maxsize=1)
def result_schema() -> dict[str, Any]:
    """The published result schema (`rag_k8s/schemas/result.json`, CONTRACT §2)."""
    text = resources.files("rag_k8s").joinpath("schemas/result.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def _openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    # `$schema`/`$id` belong to the standalone file, not to a schema embedded in OpenAPI 3.1.
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def _openapi_response_schema(schema: Any) -> Any:
    """The result schema as served in a response: `prefixItems` spelt without the keyword.

    OpenAPI tools that convert 3.1 response schemas to older drafts turn `prefixItems` into an
    `items` array and then reject it (schemathesis 4.32 does, and stops its coverage phase).
    `plan.argv`'s `prefixItems: [{"const": "kubectl"}]` becomes `contains` plus the position in
    its description; result.json itself keeps `prefixItems`, and the tests validate against it.
    """
    if isinstance(schema, list):
        return [_openapi_response_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _openapi_response_schema(v) for k, v in schema.items() if k != "prefixItems"}
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list) and prefix:
        if len(prefix) == 1:
            out["contains"] = _openapi_response_schema(prefix[0])
        first = json.dumps(prefix[0], sort_keys=True)
        note = f"Item 0 matches {first} (prefixItems in rag_k8s/schemas/result.json)."
        out["description"] = f"{schema['description']} {note}" if schema.get("description") \
            else note
    return out


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_token(token: str | None) -> None:
    """Refuse a token that is blank, short or holds spaces (CONTRACT §9); None means no token."""
    if token is None:
        return
    if not token.strip():
        raise ConfigError(
            "RAG_K8S_API_TOKEN is blank: set it to a random value of at least "
            f"{MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 24`), or unset it."
        )
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise ConfigError(
            "RAG_K8S_API_TOKEN holds spaces or control characters, which a bearer header cannot "
            "carry: use letters, digits and punctuation only (e.g. `openssl rand -hex 24`)."
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"RAG_K8S_API_TOKEN is {len(token)} characters long; it must be at least "
            f"{MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 24`)."
        )


def check_bind(host: str, token: str | None) -> None:
    """Refuse a bad token, and a non-loopback address without a token (CONTRACT §9)."""
    check_token(token)
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"Refusing to listen on {host} without an API token: set RAG_K8S_API_TOKEN "
            "(clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1."
        )


# ---------------------------------------------------------------- state and models


@dataclass
class ServerState:
    """What the server has loaded, reported by /health."""

    settings: Settings
    started: float = field(default_factory=time.monotonic)
    embedder_loaded: bool = False
    model: Any = None  # the loaded MLX model bundle, when one is loaded
    model_id: str | None = None

    def preload(self) -> None:
        """Load the embedder and, when one is available locally, the MLX model."""
        from .index import query_state

        query_state(self.settings)  # the index, the cards and the ONNX embedder; no torch
        self.embedder_loaded = True
        from .planner import mlx as mlx_planner

        if self.settings.planner != "template" and mlx_planner.model_available(self.settings):
            path = mlx_planner.resolve_model(self.settings)  # the key the planner loads it by
            self.model = mlx_planner.load_model(path)
            self.model_id = path
            log.info("loaded MLX model %s", self.model_id)
        else:
            log.info("no MLX model loaded (planner=%s, model=%s)", self.settings.planner,
                     self.settings.model)


class RetrieveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000, description="Free text.")
    intent: str | None = Field(default=None, max_length=32, description="Filter by intent.")
    resource: str | None = Field(default=None, max_length=64, description="Filter by kind.")
    k: int = Field(default=4, ge=2, le=4, description="How many cards (2-4).")


class HitOut(BaseModel):
    card_id: str
    score: float
    snippet: str


class RetrieveOut(BaseModel):
    hits: list[HitOut]


class CompletionBody(BaseModel):
    """k8sgpt `customrest` request: `options.message` carries the raw error text."""

    model: str = Field(max_length=256)
    prompt: str = Field(max_length=32 * 1024)
    options: dict[str, Any] | None = None


class CompletionOut(BaseModel):
    model: str
    created_at: str = Field(description="RFC 3339 timestamp.", json_schema_extra={"format": "date-time"})
    response: str


class ErrorOut(BaseModel):
    error: str
    field: str | None = None
    message: str


class HealthOut(BaseModel):
    status: str
    embedder: bool
    model: str | None
    index: dict[str, Any]
    planner: str
    uptime_seconds: float


def _result_response(result: Any) -> JSONResponse:
    """200 with the result, or 400 naming the field when the request was invalid (schema or
    planning: "which deployment?"), with the result beside the error."""
    body = result.to_dict()
    if result.status == "invalid":
        reasons = body["decision"]["reasons"]
        return _error(400, "invalid", reasons[0] if reasons else "invalid request",
                      result.invalid_field, result=body)
    return JSONResponse(body)


def _error(status: int, error: str, message: str, field_: str | None = None,
           **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "field": field_, "message": message, **extra}
    return JSONResponse(body, status_code=status)


# ---------------------------------------------------------------- middleware


def _split_host(value: str) -> tuple[str, str | None] | None:
    """`Host` header -> (lower-case host without brackets, port), or None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1:]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return host, rest[1:] or None
    host, sep, port = value.partition(":")
    if sep and not port.isdigit():
        return None
    return host.rstrip("."), port or None


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1)
def _machine_names() -> frozenset[str]:
    import socket

    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return frozenset(n for n in names if n)


def host_allowed(host: str, bound: str) -> bool:
    """Whether a request's `Host` names this server (the DNS-rebinding check, CONTRACT §9).

    Allowed: loopback names (`localhost`, 127.0.0.0/8, `::1`) and the bound address. On a
    wildcard bind (0.0.0.0, ::) also the machine's own names and any IP literal, since a
    rebinding attack always arrives under a DNS name the attacker controls.
    """
    bound = bound.strip("[]").lower()
    if host == "localhost" or (_is_ip_literal(host) and is_loopback(host)):
        return True
    if bound not in _WILDCARD_BINDS:
        return host == bound
    return _is_ip_literal(host) or host in _machine_names()


def origin_allowed(origin: str, bound: str) -> bool:
    """An `Origin` of a page served from this server's own allowed hosts; `null` is foreign."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(origin.strip())
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not hostname:
        return False
    return host_allowed(hostname.rstrip("."), bound)


def _media_type(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"content-type")
    if raw is None:
        return None
    media, _, params = raw.decode("latin-1").partition(";")
    charset = [p.strip().lower() for p in params.split(";") if p.strip()]
    if any(p not in ("charset=utf-8", 'charset="utf-8"') for p in charset):
        return "not-utf-8"
    return media.strip().lower()


class GuardMiddleware:
    """Every check that comes before routing, in this order (CONTRACT §9):

    Host allow-list (421), Origin / Sec-Fetch-Site (403), bearer token with a constant-time
    compare (401), GET on a POST route and CORS preflights (405), `application/json` bodies only
    (415), the 64 KiB body limit (413), and JSON safety of the bodies of /plan, /retrieve and
    /v1/completions (400). The body is read here, up to the limit, and replayed to the app, so a
    chunked upload without Content-Length is bounded too.
    """

    def __init__(self, app: ASGIApp, token: str | None, max_body: int = MAX_BODY_BYTES,
                 bound_host: str = "127.0.0.1") -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.bound_host = bound_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if scope["method"] == "POST" and body and _media_type(headers) is None:
            await _unsupported_media(scope, receive, send)  # a body without a Content-Type
            return
        if scope["method"] == "POST" and scope["path"] in _CHECKED_BODIES:
            try:
                jsonsafe.loads(body)
            except InvalidRequest as e:
                await _error(400, "invalid", redact(str(e)), e.field)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        """The answer to a request refused on its headers alone, or None."""
        headers = dict(scope.get("headers") or [])
        split = _split_host(headers.get(b"host", b"").decode("latin-1"))
        if split is None or not host_allowed(split[0], self.bound_host):
            return _error(421, "misdirected", "The Host header does not name this server; "
                          "use http://127.0.0.1:<port> (or the address it is bound to).")
        origin = headers.get(b"origin")
        if origin is not None and not origin_allowed(origin.decode("latin-1"), self.bound_host):
            return _error(403, "forbidden_origin", "Requests from web pages of another origin "
                          "are refused: rag-k8s runs commands, and a page must not drive it.")
        if headers.get(b"sec-fetch-site", b"").lower() == b"cross-site":
            return _error(403, "forbidden_origin", "Cross-site requests are refused.")
        if self.token and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
            return _error(401, "unauthorized",
                          "Send 'Authorization: Bearer <token>' with the RAG_K8S_API_TOKEN value.")
        method = scope["method"]
        if scope["path"] in POST_ROUTES and method != "POST":
            response = _error(405, "method_not_allowed",
                              f"{scope['path']} takes POST with a JSON body only"
                              + ("; cross-origin (CORS) requests are refused" if method == "OPTIONS"
                                 else ""))
            response.headers["Allow"] = "POST"
            return response
        if method == "OPTIONS":
            response = _error(405, "method_not_allowed",
                              "CORS preflights are refused: rag-k8s serves no web pages.")
            response.headers["Allow"] = "GET" if scope["path"] not in POST_ROUTES else "POST"
            return response
        if method == "POST":
            media = _media_type(headers)
            if media is not None and media != "application/json":
                return _unsupported_media_response()
        return None

    def _authorized(self, scope: Scope) -> bool:
        assert self.token is not None
        for key, value in scope.get("headers") or []:
            if key == b"authorization":
                scheme, _, given = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(
                    given.strip().encode(), self.token.encode())
        return False

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error(413, "too_large", f"The request body is over {self.max_body} bytes.")(
            scope, receive, send)


def _unsupported_media_response() -> JSONResponse:
    return _error(415, "unsupported_media_type",
                  "Send the body as JSON with 'Content-Type: application/json' (UTF-8); other "
                  "content types (text/plain, forms, multipart) are refused.")


async def _unsupported_media(scope: Scope, receive: Receive, send: Send) -> None:
    await _unsupported_media_response()(scope, receive, send)


# ---------------------------------------------------------------- the app


async def _json_body(request: Request) -> Any:
    """The body as JSON text strictly parsed (no NaN, at most 32 deep); values are checked by
    `parse_request` (jsonsafe.check) like at every door."""
    return jsonsafe.parse(await request.body())


def create_app(settings: Settings | None = None, *, preload: bool = False,
               host: str = "127.0.0.1") -> FastAPI:
    """The FastAPI app for these settings; `preload` loads the embedder and model first.

    `host` is the address it will be bound to, for the Host allow-list (CONTRACT §9). A blank or
    short token is a ConfigError here, so no server starts with it.
    """
    settings = settings or Settings.resolve()
    check_token(settings.api_token)
    state = ServerState(settings)
    if preload:
        state.preload()

    app = FastAPI(
        title="rag-k8s",
        version=_version(),
        description="A local Kubernetes command agent (CONTRACT §9).",
        docs_url=None,  # the Swagger page pulls scripts from a CDN; keep the server offline
        redoc_url=None,
    )
    app.state.rag = state
    app.add_middleware(GuardMiddleware, token=settings.api_token, bound_host=host)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"] or ["body"]
        if first.get("type") == "json_invalid":
            loc = ["body"]  # its loc is a character offset, not a field
        return _error(400, "invalid", f"{'.'.join(loc)}: {first.get('msg')}", ".".join(loc))

    @app.exception_handler(InvalidRequest)
    async def _invalid(_: Request, exc: InvalidRequest) -> JSONResponse:
        return _error(400, "invalid", redact(str(exc)), exc.field)

    @app.exception_handler(RagK8sError)
    async def _ours(_: Request, exc: RagK8sError) -> JSONResponse:
        log.error("request failed: %s", redact(str(exc)))
        return _error(500, "internal", redact(str(exc)))

    request_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _openapi_schema(request_schema())}},
        }
    }
    error_responses: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorOut, "description": "Bad JSON or an invalid request; `field` names it."},
        401: {"model": ErrorOut, "description": "Missing or wrong bearer token."},
        413: {"model": ErrorOut, "description": "Body over 64 KiB."},
        500: {"model": ErrorOut, "description": "The server is misconfigured (index, kubectl)."},
    }
    result_responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "The result (CONTRACT §2); the status is in the body.",
              "content": {"application/json": {
                  "schema": _openapi_response_schema(_openapi_schema(result_schema()))}}},
        **error_responses,
    }

    @app.get("/health", response_model=HealthOut, responses=error_responses)
    def health() -> HealthOut:
        """What is loaded: the embedder, the MLX model, the index."""
        from .index import index_status

        try:
            index = dict(index_status(settings))
        except RagK8sError as e:
            index = {"exists": False, "problem": str(e)}
        return HealthOut(status="ok", embedder=state.embedder_loaded, model=state.model_id,
                         index=index, planner=settings.planner,
                         uptime_seconds=round(time.monotonic() - state.started, 3))

    @app.post("/plan", openapi_extra=request_body, responses=result_responses)
    async def plan_route(request: Request) -> JSONResponse:
        """Retrieve, plan and validate; never runs kubectl."""
        from . import tool

        payload = await _json_body(request)
        parse_request(payload)  # 400 naming the field, before any work
        result = await run_in_threadpool(tool.plan_request, payload, settings=settings)
        state.embedder_loaded = True
        return _result_response(result)

    @app.post("/k8s-exec", openapi_extra=request_body, responses=result_responses)
    async def k8s_exec_route(request: Request) -> JSONResponse:
        """The whole pipeline; 200 for every pipeline status, 400 only for an invalid request."""
        from . import tool

        raw = await request.body()
        try:
            payload = jsonsafe.parse(raw)
        except InvalidRequest as e:  # unreadable, yet audited: every /k8s-exec call leaves a line
            text = raw.decode("utf-8", "backslashreplace")
            result = await run_in_threadpool(tool.refuse_unreadable, text, e, settings=settings)
            return _result_response(result)
        # Invalid requests still go through the pipeline, so they are audited like any other.
        result = await run_in_threadpool(tool.execute_request, payload, settings=settings)
        state.embedder_loaded = True
        return _result_response(result)

    @app.post("/retrieve", response_model=RetrieveOut, responses=error_responses)
    def retrieve_route(body: RetrieveBody) -> RetrieveOut:
        """The command cards nearest a query."""
        from .retrieve import retrieve
        from .vocab import INTENTS, normalize_resource

        if body.intent is not None and body.intent not in INTENTS:
            raise InvalidRequest("intent", f"{body.intent!r} is not one of: {', '.join(INTENTS)}")
        resource = None
        if body.resource is not None:
            resource = normalize_resource(body.resource)
            if resource is None:
                raise InvalidRequest("resource", f"{body.resource!r} is not a known kind")
        hits = retrieve(body.query, body.intent, resource, body.k, settings=settings)
        state.embedder_loaded = True
        return RetrieveOut(hits=[HitOut(**h.to_dict()) for h in hits])

    @app.post("/v1/completions", response_model=CompletionOut, responses=error_responses)
    def completions(body: CompletionBody) -> CompletionOut:
        """k8sgpt `customrest`: explain an error and list read-only commands to investigate it."""
        options = body.options or {}
        message = options.get("message")
        text = message if isinstance(message, str) and message.strip() else body.prompt
        if not text.strip():
            raise InvalidRequest("prompt", "is empty and options.message is missing")
        from .diagnose.k8sgpt import explain_from_cluster

        # The cluster's own answer when the error names a pod or workload; else the cards'.
        diagnosed = explain_from_cluster(text, state.settings)
        if diagnosed is not None:
            answer, listed = diagnosed  # quoted log lines may hold commands: hygiene drops them
            return CompletionOut(model="rag-k8s/analyzers", created_at=rfc3339_now(),
                                 response=clean_answer(answer, commands=listed, namespaces=(
                                     policy_namespaces(state.settings))))
        answer, model_name = explain(text, state)
        state.embedder_loaded = True
        return CompletionOut(model=model_name, created_at=rfc3339_now(), response=answer)

    return app


def _version() -> str:
    from . import __version__

    return __version__


def rfc3339_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- k8sgpt explanations

# Common Kubernetes failure signatures and what they usually mean; the cards say how to look.
KNOWN_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), meaning) for p, meaning in (
        (r"CrashLoopBackOff|back-off restarting failed container",
         "A container starts and exits again and again; its previous logs usually show why "
         "(a crash, a bad config or a failing command)."),
        (r"ImagePullBackOff|ErrImagePull|pull access denied|manifest unknown",
         "The node cannot pull the container image: a wrong name or tag, a private registry "
         "without an image pull secret, or no network to the registry."),
        (r"OOMKilled|out of memory",
         "A container used more memory than its limit and was killed; raise the limit or fix "
         "the memory use."),
        (r"FailedScheduling|Insufficient (cpu|memory)|didn't match|untolerated taint|unschedulable",
         "The scheduler found no node for the pod: not enough CPU or memory, or node selectors, "
         "affinity or taints exclude every node."),
        (r"Readiness probe failed|Liveness probe failed|probe failed",
         "A health probe fails: the app is not answering on the probed port or path in time."),
        (r"no endpoints|has no ready endpoints|not ready endpoints|endpoints",
         "The service selects no ready pods: its selector matches no pod, or the pods are not ready."),
        (r"forbidden|is not allowed|cannot (get|list|create|delete|patch)",
         "RBAC refused the action: the service account or user lacks a role binding for it."),
        (r"Evicted|DiskPressure|MemoryPressure",
         "The kubelet evicted the pod because the node ran short of a resource."),
        (r"NotReady|node.*not ready",
         "A node is not ready: the kubelet stopped reporting, or the node lost its network."),
        (r"unbound.*PersistentVolumeClaim|FailedMount|FailedAttachVolume|pvc.*pending",
         "A volume could not be bound or mounted: no matching PersistentVolume or storage class, "
         "or the volume is attached elsewhere."),
        (r"CreateContainerConfigError|configmap.*not found|secret.*not found",
         "The pod refers to a ConfigMap or Secret (or a key in one) that does not exist."),
    )
)


def _display_command(card: Any, known: dict[str, Any] | None = None) -> str:
    """A card's command with its slots filled from `known` where it fits, else shown as <slot>;
    optional groups are left out unless every slot in them is known."""
    from .cards import PLACEHOLDER_RE

    known = known or {}
    usable: dict[str, str] = {}
    for slot, value in known.items():
        spec = card.placeholders.get(slot)
        if spec is not None:
            try:
                usable[slot] = spec.check(slot, value)
            except RagK8sError:
                pass  # not a value this card takes: keep the <slot> marker

    def fill(m: re.Match[str]) -> str:
        return usable.get(m.group(1), f"<{m.group(1)}>")

    words = []
    for tok, group in card.tokens:
        slots = PLACEHOLDER_RE.findall(tok)
        if group is None or (slots and all(x in usable for x in slots)):
            words.append(PLACEHOLDER_RE.sub(fill, tok))
    return " ".join(words)


_POD_NAME = r"([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)"
_NS_NAME = r"([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)"


def _error_facts(text: str) -> dict[str, Any]:
    """The pod and namespace an error text names, from its explicit spellings only: the
    kubelet's `name_namespace(uid)`, `pod ns/name`, `pod/name`, `pod name`, `namespace ns`, and
    the extractor's namespace cues ("in prod", "-n prod"). Guessing a name is worse than <name>.
    """
    from .planner.extract import extract

    facts: dict[str, Any] = {}
    m = re.search(rf"\b{_POD_NAME}_{_NS_NAME}\(", text)
    if m:
        facts = {"name": m.group(1), "namespace": m.group(2)}
    m = re.search(rf"\bpods?[/ ]\"?{_NS_NAME}/{_POD_NAME}\b", text)
    if m:
        facts.setdefault("namespace", m.group(1))
        facts.setdefault("name", m.group(2))
    m = re.search(rf"\bpods?[/ ]\"?{_POD_NAME}(?![/\w-])", text)
    if m and re.search(r"\d", m.group(1)):  # pod names carry a hash or an ordinal
        facts.setdefault("name", m.group(1))
    m = re.search(rf"\bnamespaces?[ :=/]\"?{_NS_NAME}\b", text, re.I)
    if m:
        facts.setdefault("namespace", m.group(1))
    namespace = extract(text).namespace
    if namespace:
        facts.setdefault("namespace", namespace)
    return facts


def diagnostic_commands(text: str, settings: Settings, k: int = 4) -> list[tuple[str, str, str]]:
    """(card id, command, description) of the read-only cards nearest the error text.

    A namespace the error text names is filled in only when the org policy allows it; otherwise
    the command shows `<namespace>` (an error from kube-system must not make us suggest it).
    """
    from .cards import cached_corpus
    from .retrieve import retrieve

    corpus = cached_corpus(settings.cards_dir)
    facts = _error_facts(text)
    if facts.get("namespace") not in policy_namespaces(settings):
        facts.pop("namespace", None)
    query = text[:2000]
    # The nearest cards overall, plus the nearest of each investigating intent, best score first.
    hits = list(retrieve(query, None, None, 4, settings=settings))
    for intent in ("diagnose", "describe", "logs", "events"):
        hits.extend(retrieve(query, intent, None, 2, settings=settings))
    hits.sort(key=lambda h: (-h.score, h.card_id))
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    for hit in hits:
        if hit.card_id in seen:
            continue
        seen.add(hit.card_id)
        card = corpus.by_id.get(hit.card_id)
        if card is None or card.mutating:
            continue  # k8sgpt asks for an explanation: only read-only commands are offered
        out.append((card.id, _display_command(card, facts), card.description))
        if len(out) == k:
            break
    return out


def policy_namespaces(settings: Settings) -> frozenset[str]:
    """The namespaces the org policy allows anything in; none when the policy cannot be read."""
    from .errors import PolicyError
    from .policy import load_policy

    try:
        return frozenset(load_policy(settings.org_dir).namespaces)
    except PolicyError:
        return frozenset()  # fail closed: suggest no namespace at all


# A kubectl command in free text: the word and the arguments that follow it, one space apart
# (our own listing ends a command with two spaces and `#`).
_KUBECTL_SPAN = re.compile(r"\bkubectl(?:[ \t][^\s`'\"#;|&()]+)+")
_NAMESPACE_ARG = re.compile(r"(?<!\S)(-n[ \t=]?|--namespace[ \t=])([^\s`'\"]+)")
_SHELL_COMMANDS = re.compile(
    r"`[^`\n]*`|\$\([^)\n]*\)?"
    r"|\b(?:sudo|curl|wget|helm|oc|nc|ncat|eval)[ \t]+[^\n.;]*"
    r"|\b(?:ba|z)?sh[ \t]+-c\b[^\n]*|\|[ \t]*(?:ba|z)?sh\b|\brm[ \t]+-[a-zA-Z]+[ \t]+[^\n.;]*"
)
COMMAND_REMOVED = "[command removed]"


def clean_answer(answer: str, *, commands: list[str], namespaces: frozenset[str]) -> str:
    """k8sgpt answer hygiene, applied to whatever answer is produced (cards, model, analyzers).

    - every secret-looking value is redacted (`rag_k8s.redact`);
    - a kubectl command that is not one of `commands` (the ones rag-k8s listed from its cards)
      is replaced by `[command removed]`, as are shell commands and code spans: an error text or
      a model must not get a command of its own into the answer;
    - a namespace outside `namespaces` (the policy's) in a listed command becomes `<namespace>`.
    """
    def namespace_fix(command: str) -> str:
        return _NAMESPACE_ARG.sub(
            lambda m: m[0] if m[2] in namespaces else f"{m[1]}<namespace>", command)

    allowed = {namespace_fix(c).strip() for c in commands}

    def kubectl(m: re.Match[str]) -> str:
        command = namespace_fix(m[0]).strip()
        return command if command in allowed else COMMAND_REMOVED

    text = redact(answer)
    text = _SHELL_COMMANDS.sub(COMMAND_REMOVED, text)
    return _KUBECTL_SPAN.sub(kubectl, text)


def explain(text: str, state: ServerState) -> tuple[str, str]:
    """The k8sgpt answer for an error text and the name of what produced it (after hygiene)."""
    commands = diagnostic_commands(redact(text), state.settings)
    answer, name = _compose_explanation(redact(text), state, commands)
    return clean_answer(answer, commands=[cmd for _, cmd, _ in commands],
                        namespaces=policy_namespaces(state.settings)), name


def _compose_explanation(text: str, state: ServerState,
                         commands: list[tuple[str, str, str]]) -> tuple[str, str]:
    listing = "\n".join(f"{i}. {cmd}  # {desc}" for i, (_, cmd, desc) in enumerate(commands, 1))
    if not listing:
        listing = "(no read-only command card matched this error)"
    meanings = [meaning for pattern, meaning in KNOWN_ERRORS if pattern.search(text)]
    if meanings:
        explanation = " ".join(meanings[:2])
    elif commands:
        explanation = ("No known failure signature matched; the nearest diagnostic cards are: "
                       + "; ".join(desc for _, _, desc in commands[:2]))
    else:
        explanation = "No known failure signature matched this error."
    short = " ".join(text.split())
    short = short if len(short) <= 300 else short[:297] + "..."
    answer = f"Error: {short}\n\n{explanation}\n\nRead-only commands to investigate:\n{listing}"
    if state.model is not None:
        # A small local model adds its reading; the known signature and the commands stay first.
        from .planner.mlx import generation_lock

        with generation_lock(str(state.model_id)):  # the planner shares the model: one at a time
            generated = _generate_explanation(state, text, commands)
        name = Path(str(state.model_id)).name
        return (f"{answer}\n\nThe local model's reading ({name}): {generated.strip()}\n\n"
                "(commands from the rag-k8s command cards)", f"rag-k8s/{name}")
    return (f"{answer}\n\n(composed from the rag-k8s command cards; no model is loaded)",
            "rag-k8s/cards")


def _generate_explanation(state: ServerState, text: str,
                          commands: list[tuple[str, str, str]]) -> str:
    from mlx_lm import generate

    model, tokenizer = _model_and_tokenizer(state.model)
    context = "\n".join(f"- {cmd}: {desc}" for _, cmd, desc in commands)
    messages = [
        {"role": "system", "content": "You explain Kubernetes errors to an operator in at most "
                                      "four sentences. Do not invent commands."},
        {"role": "user", "content": f"Error:\n{text[:2000]}\n\nUseful read-only commands:\n"
                                    f"{context}\n\nExplain the likely cause."},
    ]
    try:
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except (AttributeError, ValueError):
        prompt = "\n\n".join(m["content"] for m in messages) + "\n\nAnswer:"
    return str(generate(model, tokenizer, prompt=prompt, max_tokens=96))  # ~6 s on a CPU


def _model_and_tokenizer(bundle: Any) -> tuple[Any, Any]:
    if isinstance(bundle, tuple) and len(bundle) >= 2:
        return bundle[0], bundle[1]
    return bundle.model, bundle.tokenizer


# ---------------------------------------------------------------- running it


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000,
          preload: bool = False) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    check_bind(host, settings.api_token)
    from .daemon import start_listener  # the CLI's warm path (daemon.py), beside HTTP

    # First: its model thread loads the model, which the HTTP preload then finds loaded.
    listener = start_listener(settings, preload=preload)
    try:
        app = create_app(settings, preload=preload, host=host)
        server = _shutdown_aware_server(uvicorn.Config(app, host=host, port=port,
                                                       log_level="info"))
        server.run()
    finally:
        listener.close()
        execute.shutdown("the server is shutting down")  # waits for the in-flight audit lines


def _shutdown_aware_server(config: Any) -> Any:
    """A uvicorn server whose SIGINT/SIGTERM first stops the kubectl of calls in flight (they
    answer `interrupted`, audited), so the graceful shutdown does not wait on them."""
    import signal

    import uvicorn

    class ShutdownAwareServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            execute.begin_shutdown(f"the server is shutting down ({signal.Signals(sig).name})")
            super().handle_exit(sig, frame)

    return ShutdownAwareServer(config)
