"""k8sgpt `customrest` answers from the cluster: when the error text names a pod or a workload
and the cluster answers, run its diagnose runbook and answer with the findings.

The error text is untrusted: only names it spells in Kubernetes' own formats are taken, and
they pass the same request validation and policy as any request.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .report import render_diagnosis

if TYPE_CHECKING:
    from ..config import Settings

_NAME = r"([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)"
_NS = r"([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)"
_KINDS = {"deployment": "deployment", "statefulset": "statefulset", "daemonset": "daemonset",
          "service": "service", "persistentvolumeclaim": "pvc", "pvc": "pvc", "node": "node",
          "pod": "pod"}
# k8sgpt's own spellings: "Deployment staging/shop has 2 replicas ...", "deployment/shop".
_KIND_NS_NAME = re.compile(rf"\b(Deployment|StatefulSet|DaemonSet|Service|PersistentVolumeClaim"
                           rf"|Pod)\s+{_NS}/{_NAME}\b", re.I)
_KIND_SLASH = re.compile(rf"\b(deployment|statefulset|daemonset|service|pvc|node)/{_NAME}\b",
                         re.I)


def target_of(text: str) -> dict[str, Any] | None:
    """The diagnose request an error text names (kind, namespace, name), or None."""
    from ..server import _error_facts

    m = _KIND_NS_NAME.search(text)
    if m:
        kind = _KINDS[m.group(1).lower()]
        return {"resource": kind, "namespace": m.group(2), "name": m.group(3)}
    facts = _error_facts(text)
    if facts.get("name") and facts.get("namespace"):
        return {"resource": "pod", "namespace": facts["namespace"], "name": facts["name"]}
    m = _KIND_SLASH.search(text)
    if m:
        kind = _KINDS[m.group(1).lower()]
        if kind == "node":
            return {"resource": "node", "name": m.group(2)}
        if facts.get("namespace"):
            return {"resource": kind, "namespace": facts["namespace"], "name": m.group(2)}
    return None


def explain_from_cluster(text: str, settings: Settings) -> tuple[str, list[str]] | None:
    """The answer from the analyzers and the kubectl commands rag-k8s itself put in it (for the
    answer hygiene), or None when the text names nothing the cluster answers for (the caller
    then answers from the cards)."""
    from ..tool import execute_request

    target = target_of(text)
    if target is None:
        return None
    result = execute_request({"intent": "diagnose", **target},
                             settings=settings.with_(planner="template")).to_dict()
    if result["status"] != "executed" or "findings" not in result:
        return None
    short = " ".join(text.split())
    short = short if len(short) <= 300 else short[:297] + "..."
    where = "/".join(x for x in (target.get("namespace"), target["name"]) if x)
    listed = [result["plan"]["command"]] + [
        f["action"]["command"] for f in result["findings"] if f.get("action")]
    return (f"Error: {short}\n\nrag-k8s diagnosed {target['resource']} {where} on the cluster "
            "(read-only runbook, deterministic analyzers):\n\n" + render_diagnosis(result)
            + "\n(composed by the rag-k8s analyzers from kubectl output; "
            f"operation {result['operation_id']})", listed)
