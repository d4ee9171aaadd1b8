"""The request of CONTRACT §1: validated against the published JSON Schema, then normalised."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from . import jsonsafe
from .errors import InvalidRequest
from .vocab import CATEGORIES, is_dns1123_label, is_dns1123_subdomain, normalize_resource


@lru_cache(maxsize=1)
def request_schema() -> dict[str, Any]:
    """The published request schema (`rag_k8s/schemas/request.json`), used by every door."""
    text = resources.files("rag_k8s").joinpath("schemas/request.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(request_schema())


@dataclass(frozen=True)
class Request:
    intent: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    query: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    confirm: bool = False
    dry_run: bool = False
    # None when the request gives none: the settings decide (config.effective_timeout).
    timeout: int | None = None
    # The argv door (CONTRACT §1): the exact command instead of intent/query; None otherwise.
    argv: tuple[str, ...] | None = None
    # Manifest paths on the caller's machine, for the manifest intents (apply/create/delete/diff).
    files: tuple[str, ...] = ()
    # constraints.previewDigest: the manifest preview (plan.preview.digest) the caller confirms.
    preview_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The request in its contract shape (normalised), for logs and prompts."""
        out: dict[str, Any] = {
            k: v
            for k, v in (("intent", self.intent), ("resource", self.resource),
                         ("namespace", self.namespace), ("name", self.name),
                         ("query", self.query))
            if v is not None
        }
        if self.params:
            out["params"] = dict(self.params)
        if self.argv is not None:
            out["argv"] = list(self.argv)
        if self.files:
            out["files"] = list(self.files)
        out["constraints"] = {"confirm": self.confirm, "dryRun": self.dry_run}
        if self.timeout is not None:
            out["constraints"]["timeout"] = self.timeout
        if self.preview_digest is not None:
            out["constraints"]["previewDigest"] = self.preview_digest
        return out


def _field_of(error: jsonschema.ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path.append(extra[0] if extra else "?")
    if error.validator == "anyOf" and not path:
        return "intent"
    return ".".join(path) or "request"


def _problem_of(error: jsonschema.ValidationError) -> str:
    v = error.validator
    if v == "additionalProperties":
        return "unknown field"
    if v == "anyOf" and not list(error.absolute_path):
        return "give an intent, a query or an argv"
    if v == "enum":
        allowed = error.schema["enum"]
        shown = ", ".join(map(str, allowed[:20])) + (", ..." if len(allowed) > 20 else "")
        return f"{_short(error.instance)} is not one of: {shown}"
    if v == "pattern":
        return f"{_short(error.instance)} is not allowed here (expected {_pattern_hint(error)})"
    if v == "type":
        return f"expected {error.schema['type']}, got {type(error.instance).__name__}"
    if v in ("maxLength", "minLength"):
        return f"length {len(error.instance)} is out of range ({v} {error.validator_value})"
    if v in ("minimum", "maximum"):
        return f"{error.instance} is out of range ({v} {error.validator_value})"
    return error.message


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pattern_hint(error: jsonschema.ValidationError) -> str:
    # The param a list entry or mapping value belongs to: `params.labels.0` -> labels.
    path = [str(p) for p in error.absolute_path if not isinstance(p, int)]
    name = path[-1] if path else ""
    if len(path) >= 3 and path[-3] == "params":
        name = path[-2]  # params.labels.<key>: a mapping's value
    return {
        "namespace": "a DNS-1123 label: lower-case letters, digits and '-'",
        "name": "a DNS-1123 name: lower-case letters, digits, '-' and '.'",
        "container": "a DNS-1123 label",
        "image": "an image reference like registry/app:1.2",
        "since": "a duration like 10m, 30s or 2h",
        "selector": "a label selector like app=api,tier!=db",
        "query": "text without control characters",
        "taint": "a taint like key=value:NoSchedule",
        "remove_taint": "a taint key, or key:Effect",
        "since_time": "an RFC 3339 time like 2026-12-02T10:00:00Z",
        "condition": "condition=NAME, delete or jsonpath={.path}=VALUE",
        "from": "cronjob/NAME",
        "field": "a resource field path like deployment.spec.replicas",
        "output": "wide, yaml, json, name, jsonpath={...} or custom-columns=NAME:.path",
        "storage": "a quantity like 20Gi",
        "sort_by": "a JSONPath like .metadata.creationTimestamp",
        "field_selector": "a field selector like status.phase=Running",
        "pod_selector": "a label selector like app=api",
        "labels": "key=value, a label key and a label value (63 characters, letters, digits, "
                  "'-', '_', '.')",
        "remove_labels": "a label key like app or example.com/team",
        "annotations": "key=value without spaces or quotes",
        "remove_annotations": "an annotation key like example.com/owner",
        "env": "NAME=value, NAME of letters, digits and '_' (not starting with a digit)",
        "remove_env": "an environment variable name",
        "literals": "key=value without spaces or quotes",
        "nodes": "a DNS-1123 node name",
        "requests": "cpu=100m,memory=128Mi",
        "limits": "cpu=500m,memory=256Mi",
    }.get(name, "the documented pattern")


def _texts(where: str, value: Any) -> list[tuple[str, str]]:
    """Every string inside a param value (list entries, mapping keys and values), with its field."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _texts(f"{where}.{i}", v)]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in ((f"{where}.{k}", str(k)),
                                                      *_texts(f"{where}.{k}", v))]
    return []


def parse_request(payload: Any) -> Request:
    """Validate and normalise a request; raises `InvalidRequest` naming the first bad field."""
    jsonsafe.check(payload)  # surrogates, non-string keys, NaN, deep nesting: before anything else
    if not isinstance(payload, dict):
        raise InvalidRequest("request", "must be a JSON object")
    errors = sorted(
        _validator().iter_errors(payload),
        key=lambda e: ([str(p) for p in e.absolute_path], str(e.validator)),
    )
    if errors:
        raise InvalidRequest(_field_of(errors[0]), _problem_of(errors[0]))

    # Belt and braces: JSON Schema's `$` lets a trailing newline through in Python's re.
    if "namespace" in payload and not is_dns1123_label(payload["namespace"]):
        raise InvalidRequest("namespace", "is not a DNS-1123 label")
    if "name" in payload and not is_dns1123_subdomain(payload["name"]):
        raise InvalidRequest("name", "is not a DNS-1123 name")
    params = {k: (int(v) if isinstance(v, float) else v)
              for k, v in payload.get("params", {}).items()}
    for key, value in params.items():
        for where, text in _texts(f"params.{key}", value):
            if "\n" in text or "\r" in text:
                raise InvalidRequest(where, "must not contain a line break")
    if "min" in params and "max" in params and params["min"] > params["max"]:
        raise InvalidRequest("params.min", f"{params['min']} is greater than max {params['max']}")

    argv = _argv_door(payload)
    files = _manifest_files(payload)
    if argv is None and not payload.get("intent") and not (payload.get("query") or "").strip():
        raise InvalidRequest("query", "is blank; give an intent or a query")

    constraints = payload.get("constraints", {})
    resource = payload.get("resource")
    return Request(
        intent=payload.get("intent"),
        resource=(resource if resource in CATEGORIES else normalize_resource(resource))
        if resource else None,
        namespace=payload.get("namespace"),
        name=payload.get("name"),
        query=(payload.get("query") or "").strip() or None,
        params=params,
        confirm=bool(constraints.get("confirm", False)),
        dry_run=bool(constraints.get("dryRun", False)),
        timeout=int(constraints["timeout"]) if "timeout" in constraints else None,
        argv=argv,
        files=files,
        preview_digest=constraints.get("previewDigest"),
    )


# Fields that say what to do; the argv door's `argv` is the whole command, so it excludes them.
_PLANNING_FIELDS = ("intent", "query", "resource", "namespace", "name", "params", "files")
MANIFEST_INTENTS = frozenset({"apply", "create", "delete", "diff"})


def _argv_door(payload: dict[str, Any]) -> tuple[str, ...] | None:
    """The argv door's command, checked for shape only (the policy judges what it does)."""
    if "argv" not in payload:
        return None
    for key in _PLANNING_FIELDS:
        if key in payload:
            raise InvalidRequest(key, "cannot be combined with argv: the argv is the whole "
                                      "command (give its namespace and files in the argv)")
    argv = payload["argv"]
    if argv[0] != "kubectl":
        raise InvalidRequest("argv.0", f"{_short(argv[0])} is not allowed here (the argv door "
                                       "runs kubectl only: start the list with \"kubectl\")")
    return tuple(argv)


def _manifest_files(payload: dict[str, Any]) -> tuple[str, ...]:
    """`files` of a manifest request: with one of the manifest intents, and never a URL."""
    files = payload.get("files")
    if not files:
        return ()
    if payload.get("intent") not in MANIFEST_INTENTS:
        raise InvalidRequest("files", "goes with intent apply, create, delete or diff")
    for i, path in enumerate(files):
        if "://" in path or path == "-":
            raise InvalidRequest(f"files.{i}", f"{_short(path)} is not a local path: manifests "
                                               "are read from this machine, never fetched or "
                                               "read from stdin")
    return tuple(files)
