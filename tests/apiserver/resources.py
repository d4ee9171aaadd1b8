"""The resource types the Kubernetes API stand-in serves, and its discovery documents.

Test infrastructure: a table of the built-in kinds rag-k8s's cards touch, enough for the real
kubectl's RESTMapper, scale client and drain's eviction check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Served from another group-version's storage (autoscaling/v1 HPAs, events.k8s.io events).
    storage: tuple[str, str] | None = None

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `pods`: how kube-apiserver names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> tuple[str, str]:
        return self.storage or (self.group, self.plural)


_ALL = ("all",)
_CREATE = ("create",)

RESOURCES: list[Resource] = [
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",), subresources=("status",)),
    Resource("", "v1", "pods", "Pod", True, ("po",), subresources=("log", "eviction", "status"),
             categories=_ALL),
    Resource("", "v1", "services", "Service", True, ("svc",), categories=_ALL),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("", "v1", "nodes", "Node", False, ("no",), subresources=("status",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",),
             subresources=("scale", "status"), categories=_ALL),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",),
             subresources=("scale", "status"), categories=_ALL),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",),
             subresources=("scale", "status"), categories=_ALL),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), subresources=("status",),
             categories=_ALL),
    Resource("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    Resource("batch", "v1", "jobs", "Job", True, subresources=("status",), categories=_ALL),
    Resource("batch", "v1", "cronjobs", "CronJob", True, ("cj",), subresources=("status",),
             categories=_ALL),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
             ("hpa",), subresources=("status",), categories=_ALL),
    Resource("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
             ("hpa",), subresources=("status",), categories=_ALL,
             storage=("autoscaling", "horizontalpodautoscalers")),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",)),
    Resource("events.k8s.io", "v1", "events", "Event", True, ("ev",), storage=("", "events")),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
             "SelfSubjectAccessReview", False, verbs=_CREATE),
    Resource("authorization.k8s.io", "v1", "selfsubjectrulesreviews",
             "SelfSubjectRulesReview", False, verbs=_CREATE),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",)),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
             False),
]

# group -> versions, preferred first (the order kube-apiserver lists them).
GROUP_VERSIONS: dict[str, list[str]] = {}
for _r in RESOURCES:
    GROUP_VERSIONS.setdefault(_r.group, [])
    if _r.version not in GROUP_VERSIONS[_r.group]:
        GROUP_VERSIONS[_r.group].append(_r.version)

BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
# Storage (group, plural) -> the resource whose form objects are stored in.
STORAGE: dict[tuple[str, str], Resource] = {
    (r.group, r.plural): r for r in RESOURCES if r.storage is None
}

# Subresources served under another group-version's kind (client-go's scale and eviction lookups).
_SUBRESOURCE_KIND = {
    "scale": ("autoscaling", "v1", "Scale", ["get", "patch", "update"]),
    "eviction": ("policy", "v1", "Eviction", ["create"]),
    "log": ("", "v1", "Pod", ["get"]),
    "status": (None, None, None, ["get", "patch", "update"]),
}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return BY_PATH.get((group, version, plural))


def resource_list(group: str, version: str) -> dict[str, Any]:
    """The legacy `APIResourceList` of one group-version (`/api/v1`, `/apis/apps/v1`)."""
    out: list[dict[str, Any]] = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in r.subresources:
            g, v, kind, verbs = _SUBRESOURCE_KIND[sub]
            sub_entry: dict[str, Any] = {
                "name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                "kind": kind or r.kind, "verbs": verbs,
            }
            if g is not None:
                sub_entry["group"] = g
                sub_entry["version"] = v
            out.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": out}


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUP_VERSIONS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g) for g in GROUP_VERSIONS if g]}


def api_group(name: str) -> dict[str, Any] | None:
    if name not in GROUP_VERSIONS or not name:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


@dataclass
class Selector:
    """A parsed label or field selector: `a=b,c!=d,e in (x,y),!f,g`."""

    terms: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | None) -> Selector:
        sel = cls()
        if not text:
            return sel
        for part in _split_selector(text):
            part = part.strip()
            if not part:
                continue
            if " notin " in part or " in " in part:
                op = "notin" if " notin " in part else "in"
                key, _, rest = part.partition(f" {op} ")
                values = [v.strip() for v in rest.strip().strip("()").split(",")]
                sel.terms.append((key.strip(), op, values))
            elif "!=" in part:
                key, _, value = part.partition("!=")
                sel.terms.append((key.strip(), "!=", [value.strip()]))
            elif "==" in part:
                key, _, value = part.partition("==")
                sel.terms.append((key.strip(), "=", [value.strip()]))
            elif "=" in part:
                key, _, value = part.partition("=")
                sel.terms.append((key.strip(), "=", [value.strip()]))
            elif part.startswith("!"):
                sel.terms.append((part[1:].strip(), "!exists", []))
            else:
                sel.terms.append((part, "exists", []))
        return sel

    def matches(self, values: dict[str, str]) -> bool:
        for key, op, want in self.terms:
            have = values.get(key)
            if op == "=" and have != want[0]:
                return False
            if op == "!=" and have == want[0]:
                return False
            if op == "in" and have not in want:
                return False
            if op == "notin" and have in want:
                return False
            if op == "exists" and have is None:
                return False
            if op == "!exists" and have is not None:
                return False
        return True


def _split_selector(text: str) -> list[str]:
    """Split on commas outside parentheses (`env in (a,b),tier=x`)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def field_values(obj: dict[str, Any]) -> dict[str, str]:
    """Flatten an object's fields for field selectors (`spec.nodeName`, `involvedObject.kind`)."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, (str, int, float, bool)) and not isinstance(value, bool):
            out[prefix] = str(value)
        elif isinstance(value, bool):
            out[prefix] = "true" if value else "false"

    walk("", obj)
    # An unset field compares as the empty string, as in kube-apiserver (`spec.nodeName=`).
    for key in ("spec.nodeName", "status.phase", "involvedObject.uid", "metadata.namespace"):
        out.setdefault(key, "")
    return out


# ---------------------------------------------------------------- OpenAPI v3 (apply, create, diff)

def _openapi_gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root() -> dict[str, Any]:
    """`/openapi/v3`: one entry per group-version, as kubectl's apply/create/diff fetch first."""
    gvs = sorted({(r.group, r.version) for r in RESOURCES})
    return {"paths": {_openapi_gv_path(g, v): {
        "serverRelativeURL": f"/openapi/v3/{_openapi_gv_path(g, v)}?hash=standin"}
        for g, v in gvs}}


_OPEN_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def openapi_v3_group_version(path: str) -> dict[str, Any] | None:
    """`/openapi/v3/api/v1` and the like: a permissive schema per kind (any field accepted, as
    the stand-in checks objects itself), and every kind's PATCH declaring `fieldValidation`, so
    kubectl's server-side field validation is used instead of a client-side schema check."""
    kinds = [r for r in RESOURCES if _openapi_gv_path(r.group, r.version) == path]
    if not kinds:
        return None
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
              {"name": "dryRun", "in": "query", "schema": {"type": "string"}}]
    for r in kinds:
        schemas[f"io.k8s.standin.{r.group or 'core'}.{r.version}.{r.kind}"] = {
            **_OPEN_OBJECT,
            "x-kubernetes-group-version-kind": [
                {"group": r.group, "version": r.version, "kind": r.kind}],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": _OPEN_OBJECT},
        }
        prefix = f"/{path}/namespaces/{{namespace}}" if r.namespaced else f"/{path}"
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        paths[f"{prefix}/{r.plural}"] = {"post": {"parameters": params,
                                                  "x-kubernetes-group-version-kind": gvk}}
        paths[f"{prefix}/{r.plural}/{{name}}"] = {
            "patch": {"parameters": params, "x-kubernetes-group-version-kind": gvk},
            "put": {"parameters": params, "x-kubernetes-group-version-kind": gvk}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (stand-in)", "version": "v1.37.1"},
            "paths": paths, "components": {"schemas": schemas}}
