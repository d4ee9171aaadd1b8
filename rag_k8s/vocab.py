"""The closed vocabularies of CONTRACT §1, §3 and §4: intents, resource kinds and risk."""

from __future__ import annotations

import re
from typing import Literal

# CONTRACT §3. `undo` runs the recorded inverse of an earlier operation (it has no card).
READ_ONLY: tuple[str, ...] = (
    "get", "describe", "logs", "events", "diagnose", "top", "can-i", "rollout-status",
    "rollout-history", "explain", "api-resources", "api-versions", "version", "cluster-info",
    "contexts", "wait", "diff",
)
CHANGING: tuple[str, ...] = (
    "restart", "scale", "set-image", "set-env", "set-resources", "rollback", "pause", "resume",
    "autoscale", "label", "annotate", "taint", "cordon", "uncordon", "drain", "create", "expose",
    "run", "patch", "apply", "delete", "undo",
)
INTENTS: tuple[str, ...] = READ_ONLY + CHANGING
Intent = Literal[INTENTS]  # type: ignore[valid-type]
READ_ONLY_INTENTS: frozenset[str] = frozenset(READ_ONLY)
MUTATING_INTENTS: frozenset[str] = frozenset(CHANGING)
# Intents served by no card: `undo` replays an audited inverse argv; `apply` and `diff` act on the
# manifests of the request's `files` (their argv is built from the files, not from a template).
CARDLESS_INTENTS: frozenset[str] = frozenset({"undo", "apply", "diff"})

RiskLevel = Literal["none", "low", "medium", "high"]
RISK_LEVELS: tuple[str, ...] = ("none", "low", "medium", "high")
RISK_ORDER = {r: i for i, r in enumerate(RISK_LEVELS)}

# CONTRACT §4.
_INTENT_RISK: dict[str, str] = {i: "none" for i in READ_ONLY_INTENTS}
_INTENT_RISK.update({i: "low" for i in ("restart", "label", "annotate", "pause", "resume")})
_INTENT_RISK.update({i: "medium" for i in (
    "scale", "set-image", "set-env", "set-resources", "rollback", "autoscale", "cordon",
    "uncordon", "taint", "create", "expose", "run", "patch", "apply", "undo")})
_INTENT_RISK.update({"drain": "high", "delete": "high"})
assert set(_INTENT_RISK) == set(INTENTS)


def base_risk(intent: str, replicas: int | None = None, *, unsafe_drain: bool = False) -> str:
    """CONTRACT §4: the risk of an intent; `scale` to 0 is high, and so is a drain with
    --force, --disable-eviction or --grace-period=0 (`unsafe_drain`)."""
    if intent == "scale" and replicas == 0:
        return "high"
    if intent == "drain" and unsafe_drain:
        return "high"
    return _INTENT_RISK[intent]


def max_risk(*levels: str) -> str:
    return max(levels, key=lambda r: RISK_ORDER[r])


# Canonical kind -> the kubectl aliases that name it (plural, short names, API-style names).
RESOURCE_ALIASES: dict[str, tuple[str, ...]] = {
    "deployment": ("deployments", "deploy", "deployment.apps", "deployments.apps"),
    "pod": ("pods", "po"),
    "node": ("nodes", "no"),
    "service": ("services", "svc"),
    "statefulset": ("statefulsets", "sts", "statefulset.apps", "statefulsets.apps"),
    "daemonset": ("daemonsets", "ds", "daemonset.apps", "daemonsets.apps"),
    "replicaset": ("replicasets", "rs", "replicaset.apps", "replicasets.apps"),
    "job": ("jobs", "job.batch", "jobs.batch"),
    "cronjob": ("cronjobs", "cj", "cronjob.batch", "cronjobs.batch"),
    "configmap": ("configmaps", "cm"),
    "secret": ("secrets",),
    "namespace": ("namespaces", "ns"),
    "event": ("events", "ev", "event.events.k8s.io", "events.events.k8s.io"),
    "pvc": ("pvcs", "persistentvolumeclaim", "persistentvolumeclaims"),
    "hpa": ("hpas", "horizontalpodautoscaler", "horizontalpodautoscalers",
            "horizontalpodautoscaler.autoscaling", "horizontalpodautoscalers.autoscaling"),
    "ingress": ("ingresses", "ing", "ingress.networking.k8s.io",
                "ingresses.networking.k8s.io"),
}
RESOURCES: tuple[str, ...] = tuple(RESOURCE_ALIASES)
_ALIAS_TO_KIND: dict[str, str] = {k: k for k in RESOURCE_ALIASES}
for _kind, _aliases in RESOURCE_ALIASES.items():
    for _a in _aliases:
        _ALIAS_TO_KIND[_a] = _kind

# `kubectl get all`: the kinds of the `all` category that are in RESOURCES (never secrets or
# configmaps); `all` is accepted by `get` only, and judged kind by kind.
CATEGORIES: dict[str, frozenset[str]] = {
    "all": frozenset({"pod", "service", "deployment", "replicaset", "statefulset", "daemonset",
                      "job", "cronjob", "hpa"}),
}

CLUSTER_SCOPED: frozenset[str] = frozenset({"node", "namespace"})
# Workloads whose pods `rollout restart` can replace.
RESTARTABLE: frozenset[str] = frozenset({"deployment", "statefulset", "daemonset"})


def normalize_resource(word: str) -> str | None:
    """`deploy`, `Deployments`, `deployment.apps` -> `deployment`; None when unknown."""
    return _ALIAS_TO_KIND.get(word.strip().lower())


# DNS-1123 label (namespaces, at most 63) and subdomain (object names, at most 253).
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_LABEL_RE = re.compile(DNS1123_LABEL.strip("^$"))
_SUBDOMAIN_RE = re.compile(DNS1123_SUBDOMAIN.strip("^$"))


def is_dns1123_label(value: object) -> bool:
    # fullmatch, not `$`: Python's `$` also matches before a trailing newline.
    return isinstance(value, str) and len(value) <= 63 and bool(_LABEL_RE.fullmatch(value))


def is_dns1123_subdomain(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 253 and bool(_SUBDOMAIN_RE.fullmatch(value))
