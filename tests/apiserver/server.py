"""The HTTPS front of the Kubernetes API stand-in: routing, authentication, RBAC, watches.

Test infrastructure: a LOCAL PRACTICE API, NOT A CLUSTER. It speaks enough of kube-apiserver's
REST protocol for the real kubectl to run rag-k8s's commands against it over TLS, with bearer
tokens, discovery, server-side tables, dry-run, RBAC and a request log.
"""

from __future__ import annotations

import copy
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from . import protobuf, rbac, resources, tables
from .patch import PatchError, apply_patch
from .rbac import Attributes, User
from .resources import Resource
from .store import ApiError, Obj, Store
from .tls import make_tls

DEFAULT_FIXTURES = Path(__file__).resolve().parent / "fixtures.yaml"
VERSION = {"major": "1", "minor": "37", "emulationMajor": "1", "emulationMinor": "37",
           "minCompatibilityMajor": "1", "minCompatibilityMinor": "36",
           "gitVersion": "v1.37.1-standin", "gitCommit": "0000000000000000000000000000000000000000",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25",
           "compiler": "gc", "platform": "linux/amd64"}
DEFAULT_USERS = [{"name": "admin", "groups": ["system:masters"]}, {"name": "dev-user"}]
PROTOBUF = "application/vnd.kubernetes.protobuf"


@dataclass
class RequestRecord:
    """One request the stand-in received, as tests see it in `StandIn.requests()`."""

    method: str
    path: str
    query: dict[str, list[str]]
    user: str
    status: int = 0
    content_type: str = ""

    @property
    def dry_run(self) -> bool:
        return "All" in self.query.get("dryRun", [])


@dataclass
class Route:
    res: Resource
    namespace: str
    name: str
    sub: str


def _status_ok(details: Obj | None = None, code: int = 200) -> Obj:
    out: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        out["details"] = details
    if code != 200:
        out["code"] = code
    return out


# ----- served-version conversions (storage keeps one form per resource) ------------------------

def _hpa_to_v1(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec = out.get("spec", {})
    for m in spec.pop("metrics", None) or []:
        util = (m.get("resource") or {}).get("target", {}).get("averageUtilization")
        if (m.get("resource") or {}).get("name") == "cpu" and util is not None:
            spec["targetCPUUtilizationPercentage"] = util
    spec.pop("behavior", None)
    out["status"] = {"currentReplicas": obj.get("status", {}).get("currentReplicas", 0),
                     "desiredReplicas": obj.get("status", {}).get("desiredReplicas", 0)}
    return out


def _hpa_from_v1(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    spec = out.setdefault("spec", {})
    cpu = spec.pop("targetCPUUtilizationPercentage", None)
    if cpu is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}]
    return out


def _event_to_events_v1(obj: Obj) -> Obj:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": obj["metadata"],
            "eventTime": obj.get("eventTime"), "reason": obj.get("reason"),
            "note": obj.get("message"), "type": obj.get("type"),
            "regarding": obj.get("involvedObject"),
            "reportingController": obj.get("reportingComponent") or
            obj.get("source", {}).get("component", ""),
            "reportingInstance": obj.get("reportingInstance", ""),
            "deprecatedSource": obj.get("source", {}),
            "deprecatedFirstTimestamp": obj.get("firstTimestamp"),
            "deprecatedLastTimestamp": obj.get("lastTimestamp"),
            "deprecatedCount": obj.get("count", 1)}


def to_served(res: Resource, obj: Obj) -> Obj:
    if res.storage is None:
        return obj
    if res.plural == "horizontalpodautoscalers":
        return _hpa_to_v1(obj)
    if res.group == "events.k8s.io":
        return _event_to_events_v1(obj)
    return obj


def from_served(res: Resource, obj: Obj) -> Obj:
    if res.group == "autoscaling" and res.version == "v1":
        return _hpa_from_v1(obj)
    return obj


class StandInHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: StandIn


class Handler(BaseHTTPRequestHandler):
    """One request; `server.standin` holds the store, users and request log."""

    protocol_version = "HTTP/1.1"
    server: StandInHTTPServer
    timeout = 120  # idle keep-alive connections close eventually

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the request log is data (StandIn.requests()), not stderr noise

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ----- plumbing ----------------------------------------------------------------------------

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if self._record is not None:
            self._record.status = code

    def _json(self, code: int, obj: Any, content_type: str = "application/json") -> None:
        self._send(code, json.dumps(obj).encode(), content_type)

    def _error(self, err: ApiError) -> None:
        self._json(err.code, err.status())

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _parse_body(self, raw: bytes, key: tuple[str, str, str]) -> Obj:
        ct = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ct == PROTOBUF:
            schema = protobuf.SCHEMAS.get(key)
            if schema is None:
                raise ApiError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - accepted "
                               f"media types include: application/json, application/yaml")
            try:
                return protobuf.decode_envelope(raw, schema)
            except protobuf.ProtobufError as e:
                raise ApiError(400, "BadRequest", f"unable to decode protobuf body: {e}") from None
        try:
            data = yaml.safe_load(raw.decode()) if ct == "application/yaml" else json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise ApiError(400, "BadRequest", f"the object provided is unrecognized: {e}") from None
        if not isinstance(data, (dict, list)):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized")
        return data  # type: ignore[return-value]

    # ----- entry -------------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        self._record: RequestRecord | None = None
        standin = self.server.standin
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        raw = self._body()
        auth = self.headers.get("Authorization", "")
        user = standin.users.get(auth[7:]) if auth.startswith("Bearer ") else None
        if not url.path.startswith("/_standin/"):
            self._record = RequestRecord(method, url.path, query, user.name if user else "",
                                         content_type=self.headers.get("Content-Type", ""))
            standin._log(self._record)
        if user is None:
            self._json(401, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Failure", "message": "Unauthorized",
                             "reason": "Unauthorized", "code": 401})
            return
        try:
            self._dispatch(method, url.path.rstrip("/") or "/", query, raw, user)
        except ApiError as e:
            self._error(e)
        except PatchError as e:
            self._error(ApiError(422, "Invalid", str(e)))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        except Exception as e:  # a stand-in bug: answer as kube-apiserver would, not hang up
            self._error(ApiError(500, "InternalError", f"Internal error occurred: {e!r}"))

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], raw: bytes,
                  user: User) -> None:
        standin = self.server.standin
        if path.startswith("/_standin/"):
            if "system:masters" not in user.groups:
                raise ApiError(403, "Forbidden", "the stand-in's control API is for admins")
            if path == "/_standin/requests" and method == "GET":
                self._json(200, [r.__dict__ for r in standin.requests()])
            elif path == "/_standin/reset" and method == "POST":
                standin.reset()
                self._json(200, _status_ok())
            else:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return
        route = self._route(path)
        if route is None:
            self._non_resource(method, path, user)
            return
        self._resource(method, route, query, raw, user)

    def _non_resource(self, method: str, path: str, user: User) -> None:
        attrs = Attributes(verb=method.lower(), path=path)
        if not rbac.authorize(user, attrs, self.server.standin.lister):
            raise ApiError(403, "Forbidden", rbac.forbidden_message(user, attrs, ""), {})
        parts = path.strip("/").split("/")
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        if path == "/api":
            self._json(200, resources.api_versions())
        elif path == "/api/v1":
            self._json(200, resources.resource_list("", "v1"))
        elif path == "/apis":
            self._json(200, resources.api_group_list())
        elif parts[0] == "apis" and len(parts) == 2 and resources.api_group(parts[1]):
            self._json(200, resources.api_group(parts[1]))
        elif parts[0] == "apis" and len(parts) == 3 and \
                parts[2] in resources.GROUP_VERSIONS.get(parts[1], []):
            self._json(200, resources.resource_list(parts[1], parts[2]))
        elif path == "/version":
            self._json(200, VERSION)
        elif path in ("/healthz", "/livez", "/readyz"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/openapi/v3":
            self._json(200, resources.openapi_v3_root())
        elif path.startswith("/openapi/v3/") and \
                resources.openapi_v3_group_version(path.removeprefix("/openapi/v3/")):
            self._json(200, resources.openapi_v3_group_version(path.removeprefix("/openapi/v3/")))
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})

    def _route(self, path: str) -> Route | None:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        res = resources.lookup(group, version, rest[0])
        if res is None or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        if ns and not res.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in res.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        return Route(res, ns, name, sub)

    # ----- resources ---------------------------------------------------------------------------

    def _resource(self, method: str, r: Route, query: dict[str, list[str]], raw: bytes,
                  user: User) -> None:
        standin = self.server.standin
        store = standin.store
        q = {k: v[-1] for k, v in query.items()}
        watch = q.get("watch") in ("true", "1")
        verb = {"GET": "watch" if watch else ("get" if r.name else "list"), "POST": "create",
                "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if r.name else "deletecollection"}[method]
        body: Obj = {}
        if method in ("POST", "PUT", "PATCH") and method != "PATCH":
            body = self._parse_body(raw, (r.res.group, r.res.version, r.sub or r.res.plural)
                                    if r.sub != "eviction" else ("policy", "v1", "eviction"))
        name = r.name
        if method == "POST" and not r.sub:
            name = ""
        attrs = Attributes(verb=verb, group=r.res.group, resource=r.res.plural,
                           subresource=r.sub, namespace=r.namespace, name=name)
        if r.res.plural == "namespaces" and r.name:
            attrs = Attributes(verb=verb, resource="namespaces", subresource=r.sub,
                               namespace=r.name, name=r.name)
        if not rbac.authorize(user, attrs, standin.lister):
            raise ApiError(403, "Forbidden",
                           rbac.forbidden_message(user, attrs, r.res.group_resource),
                           {"name": r.name, "group": r.res.group, "kind": r.res.plural}
                           if r.name else {"group": r.res.group, "kind": r.res.plural})
        # A deliberate stall for executor-timeout tests: any request naming a pod `stall-*`.
        if r.res.plural == "pods" and r.name.startswith("stall-"):
            standin.stopping.wait(store.stall_seconds)
        dry_run = "All" in query.get("dryRun", [])
        accept = self.headers.get("Accept", "")
        ns = r.namespace

        if method == "GET":
            if r.sub == "log":
                text = store.pod_log(
                    ns, r.name, q.get("container") or None, q.get("previous") == "true",
                    int(q["tailLines"]) if "tailLines" in q else None,
                    int(q["sinceSeconds"]) if "sinceSeconds" in q else None,
                    q.get("timestamps") == "true")
                self._send(200, text.encode(), "text/plain")
            elif r.sub == "scale":
                self._json(200, store.scale_of(r.res, store.get(r.res, ns, r.name)))
            elif watch:
                self._watch(r, q)
            elif r.name:
                obj = store.get(r.res, ns, r.name)
                self._answer(r.res, [obj], accept, single=True)
            else:
                objs = store.list(r.res, ns or None, q.get("labelSelector"),
                                  q.get("fieldSelector"))
                self._answer(r.res, objs, accept, single=False)
            return

        if method == "POST":
            if r.res.plural == "selfsubjectaccessreviews":
                self._json(201, self._access_review(body, user))
            elif r.res.plural == "selfsubjectrulesreviews":
                self._json(201, self._rules_review(body, user))
            elif r.sub == "eviction":
                options = body.get("deleteOptions") or {}
                dry = dry_run or "All" in (options.get("dryRun") or [])
                pod = store.get(r.res, ns, r.name)
                store.delete(r.res, ns, r.name, dry_run=dry)
                if not dry:
                    standin.evictions.append((ns, pod["metadata"]["name"]))
                self._json(201, _status_ok(code=201))
            elif r.name:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            else:
                obj = from_served(r.res, body)
                created = store.create(r.res, ns, obj, dry_run=dry_run)
                self._json(201, to_served(r.res, created))
            return

        if method == "PUT":
            if r.sub == "scale":
                obj = store.get(r.res, ns, r.name)
                obj.setdefault("spec", {})["replicas"] = body.get("spec", {}).get("replicas", 0)
                new = store.update(r.res, ns, r.name, obj, dry_run=dry_run)
                self._json(200, store.scale_of(r.res, new))
            else:
                new = store.update(r.res, ns, r.name, from_served(r.res, body), dry_run=dry_run)
                self._json(200, to_served(r.res, new))
            return

        if method == "PATCH":
            patch = self._parse_patch(raw)
            current = store.get(r.res, ns, r.name)
            ct = self.headers.get("Content-Type", "")
            if r.sub == "scale":
                scale = apply_patch(ct, store.scale_of(r.res, current), patch)
                current.setdefault("spec", {})["replicas"] = scale.get("spec", {}).get(
                    "replicas", 0)
                new = store.update(r.res, ns, r.name, current, dry_run=dry_run)
                self._json(200, store.scale_of(r.res, new))
                return
            served = to_served(r.res, current)
            patched = apply_patch(ct, served, patch)
            patched.setdefault("metadata", {}).setdefault(
                "resourceVersion", current["metadata"]["resourceVersion"])
            if r.sub == "status":
                current["status"] = patched.get("status", {})
                patched = current
            new = store.update(r.res, ns, r.name, from_served(r.res, patched), dry_run=dry_run)
            self._json(200, to_served(r.res, new))
            return

        if method == "DELETE":
            if not r.name:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            options = json.loads(raw) if raw.strip() else {}
            propagation = options.get("propagationPolicy") or (
                "Orphan" if options.get("orphanDependents") else "Background")
            obj = store.delete(r.res, ns, r.name, dry_run=dry_run, propagation=propagation)
            if r.res.plural == "pods":
                self._json(200, obj)
            else:
                self._json(200, _status_ok({"name": r.name, "group": r.res.group,
                                            "kind": r.res.plural,
                                            "uid": obj["metadata"]["uid"]}))

    def _parse_patch(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"error decoding patch: {e}") from None

    def _answer(self, res: Resource, objs: list[Obj], accept: str, single: bool) -> None:
        store = self.server.standin.store
        if tables.wants_table(accept):
            self._json(200, tables.table(res.plural, objs, str(store.rv)),
                       "application/json;as=Table;v=v1;g=meta.k8s.io")
        elif single:
            self._json(200, to_served(res, objs[0]))
        else:
            items = []
            for o in objs:
                item = to_served(res, o)
                items.append(item)
            self._json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                             "metadata": {"resourceVersion": str(store.rv)}, "items": items})

    # ----- authorization reviews ---------------------------------------------------------------

    def _access_review(self, body: Obj, user: User) -> Obj:
        spec = body.get("spec") or {}
        ra = spec.get("resourceAttributes")
        if ra:
            attrs = Attributes(verb=ra.get("verb", ""), group=ra.get("group", ""),
                               resource=ra.get("resource", ""),
                               subresource=ra.get("subresource", ""),
                               namespace=ra.get("namespace", ""), name=ra.get("name", ""))
        else:
            nra = spec.get("nonResourceAttributes") or {}
            attrs = Attributes(verb=nra.get("verb", ""), path=nra.get("path", ""))
        allowed = rbac.authorize(user, attrs, self.server.standin.lister)
        status: Obj = {"allowed": allowed}
        if allowed and "system:masters" in user.groups:
            status["reason"] = ('RBAC: allowed by ClusterRoleBinding "cluster-admin" of '
                                'ClusterRole "cluster-admin" to Group "system:masters"')
        return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

    def _rules_review(self, body: Obj, user: User) -> Obj:
        ns = (body.get("spec") or {}).get("namespace", "")
        rules = rbac.rules_for(user, ns, self.server.standin.lister)
        return {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": {"namespace": ns},
                "status": {"resourceRules": rules,
                           "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": [
                               "/api", "/api/*", "/apis", "/apis/*", "/version"]}],
                           "incomplete": False}}

    # ----- watch -------------------------------------------------------------------------------

    def _watch(self, r: Route, q: dict[str, str]) -> None:
        """Stream watch events; the initial list ends with a BOOKMARK when the client asks for
        it (`sendInitialEvents=true`), without which `kubectl rollout status`/`wait` hang."""
        standin, store = self.server.standin, self.server.standin.store
        labels = resources.Selector.parse(q.get("labelSelector"))
        fields = resources.Selector.parse(q.get("fieldSelector"))
        key = r.res.storage_key

        def matches(obj: Obj) -> bool:
            if r.namespace and obj["metadata"].get("namespace") != r.namespace:
                return False
            return labels.matches(obj["metadata"].get("labels") or {}) and \
                fields.matches(resources.field_values(obj))

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self._record is not None:
            self._record.status = 200

        def send(event: str, obj: Obj) -> None:
            data = json.dumps({"type": event, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        with store.lock:
            since = int(q.get("resourceVersion") or 0)
            initial = q.get("sendInitialEvents") == "true" or since == 0
            snapshot = store.list(r.res, r.namespace or None) if initial else []
            since = store.rv if initial else since
        for obj in snapshot:
            if matches(obj):
                send("ADDED", to_served(r.res, obj))
        if q.get("sendInitialEvents") == "true":
            send("BOOKMARK", {"kind": r.res.kind, "apiVersion": r.res.api_version,
                              "metadata": {"resourceVersion": str(since), "annotations": {
                                  "k8s.io/initial-events-end": "true"}}})
        deadline = time.monotonic() + min(float(q.get("timeoutSeconds") or 300), 300)
        while not standin.stopping.is_set() and time.monotonic() < deadline:
            with store.lock:
                store.changed.wait(timeout=0.5)
                pending = store.events_since(since)
            for rv, event, obj_key, obj in pending:
                since = rv
                if obj_key == key and matches(obj):
                    send(event, to_served(r.res, obj))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True


@dataclass
class StandIn:
    """A running stand-in: `StandIn.start(fixtures, workdir)` returns one.

    `kubeconfig_path` has contexts `admin` (current) and `dev-user`;
    `kubeconfig_for("dev-user")` is a kubeconfig whose current context is that user.
    """

    fixtures: Obj
    workdir: Path
    store: Store
    users: dict[str, User]
    tokens: dict[str, str]
    url: str = ""
    kubeconfig_path: Path = Path()
    stopping: threading.Event = field(default_factory=threading.Event)
    evictions: list[tuple[str, str]] = field(default_factory=list)
    _requests: list[RequestRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: StandInHTTPServer | None = None
    _thread: threading.Thread | None = None

    @classmethod
    def start(cls, fixtures: Path | Obj | None = None, workdir: Path | None = None,
              port: int = 0) -> StandIn:
        """Start on 127.0.0.1 (a free port unless `port`), write TLS files, tokens and kubeconfigs
        into `workdir`, and serve in a daemon thread."""
        if workdir is None:
            raise ValueError("workdir is required")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        if fixtures is None or isinstance(fixtures, (str, Path)):
            data = yaml.safe_load(Path(fixtures or DEFAULT_FIXTURES).read_text())
        else:
            data = copy.deepcopy(fixtures)
        user_specs = (data.get("standin") or {}).get("users") or DEFAULT_USERS
        users, tokens = {}, {}
        for spec in user_specs:
            token = secrets.token_urlsafe(24)
            groups = (*spec.get("groups", []), "system:authenticated")
            users[token] = User(spec["name"], f"uid-{spec['name']}", tuple(groups))
            tokens[spec["name"]] = token
        rbac.write_tokens(workdir / "tokens.csv", users.items())
        # Read back through the token-file parser, as kube-apiserver would.
        users = rbac.read_tokens(workdir / "tokens.csv")
        self = cls(fixtures=data, workdir=workdir, store=Store(data), users=users, tokens=tokens)
        tls = make_tls(workdir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls.server_cert, tls.server_key)
        httpd = StandInHTTPServer(("127.0.0.1", port), Handler)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                       do_handshake_on_connect=False)
        httpd.standin = self
        self._httpd = httpd
        self.url = f"https://127.0.0.1:{httpd.server_address[1]}"
        self.kubeconfig_path = self._write_kubeconfig(workdir / "kubeconfig", "admin",
                                                      tls.ca_cert)
        for name in tokens:
            self._write_kubeconfig(workdir / f"kubeconfig-{name}", name, tls.ca_cert)
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="k8s-api-standin", daemon=True)
        self._thread.start()
        return self

    def _write_kubeconfig(self, path: Path, current: str, ca: Path) -> Path:
        import base64

        ca_data = base64.b64encode(ca.read_bytes()).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": current, "preferences": {},
            "clusters": [{"name": "standin", "cluster": {
                "server": self.url, "certificate-authority-data": ca_data}}],
            "users": [{"name": n, "user": {"token": t}} for n, t in self.tokens.items()],
            "contexts": [{"name": n, "context": {"cluster": "standin", "user": n}}
                         for n in self.tokens],
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig whose current context is `user` (rag-k8s refuses `--context`)."""
        return self.workdir / f"kubeconfig-{user}"

    def lister(self, plural: str, namespace: str) -> list[Obj]:
        return self.store.list_raw(plural, namespace)

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def requests(self) -> list[RequestRecord]:
        """Every request received since the start or the last `clear_requests()`/`reset()`."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Reload the fixtures and forget the request log."""
        self.store.load(self.fixtures)
        self.evictions.clear()
        self.clear_requests()

    def stop(self) -> None:
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
