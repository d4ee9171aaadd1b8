"""Server-side tables (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) for the stand-in.

Test infrastructure. `kubectl get` asks the server for a `meta.k8s.io/v1 Table` and prints its
columns; these follow kube-apiserver's printers for the kinds rag-k8s reads (priority 1 columns
are the extra ones of `-o wide`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

Row = list[Any]
Column = tuple[str, str, int]  # name, type, priority


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery's duration.HumanDuration."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if h < 24 * 365 * 2:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d % 365 else f"{d // 365}y"


def age(obj: dict[str, Any], now: dt.datetime | None = None) -> str:
    ts = parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    if ts is None:
        return "<unknown>"
    now = now or dt.datetime.now(dt.timezone.utc)
    return human_duration((now - ts).total_seconds())


def _since(value: str | None) -> str:
    ts = parse_time(value)
    if ts is None:
        return "<unknown>"
    return human_duration((dt.datetime.now(dt.timezone.utc) - ts).total_seconds())


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {})
    tmpl = spec.get("template", {}).get("spec", {}) if "template" in spec else spec
    return list(tmpl.get("containers") or [])


def _names(obj: dict[str, Any]) -> str:
    return ",".join(c.get("name", "") for c in _containers(obj))


def _images(obj: dict[str, Any]) -> str:
    return ",".join(c.get("image", "") for c in _containers(obj))


def _selector(obj: dict[str, Any]) -> str:
    labels = obj.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _pod(o: dict[str, Any]) -> Row:
    statuses = o.get("status", {}).get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    phase = o.get("status", {}).get("phase", "Pending")
    reason = o.get("status", {}).get("reason") or phase
    for c in statuses:
        waiting = c.get("state", {}).get("waiting")
        if waiting:
            reason = waiting.get("reason", reason)
    if o.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return [o["metadata"]["name"], f"{ready}/{len(_containers(o))}", reason, restarts, age(o),
            o.get("status", {}).get("podIP") or "<none>",
            o.get("spec", {}).get("nodeName") or "<none>", "<none>", "<none>"]


def _deploy(o: dict[str, Any]) -> Row:
    st = o.get("status", {})
    return [o["metadata"]["name"],
            f"{st.get('readyReplicas', 0)}/{o.get('spec', {}).get('replicas', 1)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), age(o),
            _names(o), _images(o), _selector(o)]


def _rs(o: dict[str, Any]) -> Row:
    st = o.get("status", {})
    return [o["metadata"]["name"], o.get("spec", {}).get("replicas", 1), st.get("replicas", 0),
            st.get("readyReplicas", 0), age(o), _names(o), _images(o), _selector(o)]


def _sts(o: dict[str, Any]) -> Row:
    st = o.get("status", {})
    return [o["metadata"]["name"],
            f"{st.get('readyReplicas', 0)}/{o.get('spec', {}).get('replicas', 1)}", age(o),
            _names(o), _images(o)]


def _ds(o: dict[str, Any]) -> Row:
    st = o.get("status", {})
    node_sel = o.get("spec", {}).get("template", {}).get("spec", {}).get("nodeSelector") or {}
    return [o["metadata"]["name"], st.get("desiredNumberScheduled", 0),
            st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in node_sel.items()) or "<none>", age(o),
            _names(o), _images(o), _selector(o)]


def _svc(o: dict[str, Any]) -> Row:
    spec = o.get("spec", {})
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    sel = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
    return [o["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"),
            "<none>", ports or "<none>", age(o), sel or "<none>"]


def _node(o: dict[str, Any]) -> Row:
    conds = {c.get("type"): c.get("status") for c in o.get("status", {}).get("conditions") or []}
    status = "Ready" if conds.get("Ready") == "True" else "NotReady"
    if o.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = o.get("metadata", {}).get("labels") or {}
    roles = ",".join(sorted(k.split("/", 1)[1] for k in labels
                            if k.startswith("node-role.kubernetes.io/"))) or "<none>"
    info = o.get("status", {}).get("nodeInfo", {})
    addrs = {a.get("type"): a.get("address") for a in o.get("status", {}).get("addresses") or []}
    return [o["metadata"]["name"], status, roles, age(o), info.get("kubeletVersion", ""),
            addrs.get("InternalIP", "<none>"), addrs.get("ExternalIP", "<none>"),
            info.get("osImage", ""), info.get("kernelVersion", ""),
            info.get("containerRuntimeVersion", "")]


def _job(o: dict[str, Any]) -> Row:
    st, spec = o.get("status", {}), o.get("spec", {})
    conds = {c.get("type") for c in st.get("conditions") or [] if c.get("status") == "True"}
    status = "Complete" if "Complete" in conds else "Failed" if "Failed" in conds else "Running"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = human_duration((end - start).total_seconds()) if start and end else ""
    return [o["metadata"]["name"], status,
            f"{st.get('succeeded', 0)}/{spec.get('completions', 1)}", duration, age(o),
            _names(o), _images(o)]


def _cronjob(o: dict[str, Any]) -> Row:
    spec, st = o.get("spec", {}), o.get("status", {})
    return [o["metadata"]["name"], spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            str(bool(spec.get("suspend", False))), len(st.get("active") or []),
            _since(st.get("lastScheduleTime")) if st.get("lastScheduleTime") else "<none>",
            age(o)]


def _event(o: dict[str, Any]) -> Row:
    inv = o.get("involvedObject", {})
    last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    return [_since(last), o.get("type", ""), o.get("reason", ""),
            f"{inv.get('kind', '').lower()}/{inv.get('name', '')}", o.get("message", "")]


def _hpa(o: dict[str, Any]) -> Row:
    spec, st = o.get("spec", {}), o.get("status", {})
    ref = spec.get("scaleTargetRef", {})
    targets = []
    for m in spec.get("metrics") or []:
        res = m.get("resource") or {}
        util = res.get("target", {}).get("averageUtilization")
        if util is not None:
            targets.append(f"{res.get('name', 'cpu')}: <unknown>/{util}%")
    if "targetCPUUtilizationPercentage" in spec:
        targets.append(f"cpu: <unknown>/{spec['targetCPUUtilizationPercentage']}%")
    return [o["metadata"]["name"], f"{ref.get('kind')}/{ref.get('name')}",
            ", ".join(targets) or "<none>", spec.get("minReplicas", 1),
            spec.get("maxReplicas", 0), st.get("currentReplicas", 0), age(o)]


def _pvc(o: dict[str, Any]) -> Row:
    spec, st = o.get("spec", {}), o.get("status", {})
    cap = (st.get("capacity") or {}).get("storage", "")
    return [o["metadata"]["name"], st.get("phase", "Pending"), spec.get("volumeName", ""), cap,
            ",".join({"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX"}
                     .get(m, m) for m in st.get("accessModes") or []),
            spec.get("storageClassName") or "<unset>", "<unset>", age(o)]


def _ingress(o: dict[str, Any]) -> Row:
    spec = o.get("spec", {})
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or []) or "*"
    return [o["metadata"]["name"], spec.get("ingressClassName") or "<none>", hosts, "", "80",
            age(o)]


def _default(o: dict[str, Any]) -> Row:
    return [o["metadata"]["name"], age(o)]


S, I = "string", "integer"
TABLES: dict[str, tuple[list[Column], Callable[[dict[str, Any]], Row]]] = {
    "pods": ([("Name", S, 0), ("Ready", S, 0), ("Status", S, 0), ("Restarts", S, 0),
              ("Age", S, 0), ("IP", S, 1), ("Node", S, 1), ("Nominated Node", S, 1),
              ("Readiness Gates", S, 1)], _pod),
    "deployments": ([("Name", S, 0), ("Ready", S, 0), ("Up-to-date", I, 0),
                     ("Available", I, 0), ("Age", S, 0), ("Containers", S, 1),
                     ("Images", S, 1), ("Selector", S, 1)], _deploy),
    "replicasets": ([("Name", S, 0), ("Desired", I, 0), ("Current", I, 0), ("Ready", I, 0),
                     ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1),
                     ("Selector", S, 1)], _rs),
    "statefulsets": ([("Name", S, 0), ("Ready", S, 0), ("Age", S, 0), ("Containers", S, 1),
                      ("Images", S, 1)], _sts),
    "daemonsets": ([("Name", S, 0), ("Desired", I, 0), ("Current", I, 0), ("Ready", I, 0),
                    ("Up-to-date", I, 0), ("Available", I, 0), ("Node Selector", S, 0),
                    ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1),
                    ("Selector", S, 1)], _ds),
    "services": ([("Name", S, 0), ("Type", S, 0), ("Cluster-IP", S, 0), ("External-IP", S, 0),
                  ("Port(s)", S, 0), ("Age", S, 0), ("Selector", S, 1)], _svc),
    "nodes": ([("Name", S, 0), ("Status", S, 0), ("Roles", S, 0), ("Age", S, 0),
               ("Version", S, 0), ("Internal-IP", S, 1), ("External-IP", S, 1),
               ("OS-Image", S, 1), ("Kernel-Version", S, 1), ("Container-Runtime", S, 1)],
              _node),
    "namespaces": ([("Name", S, 0), ("Status", S, 0), ("Age", S, 0)],
                   lambda o: [o["metadata"]["name"],
                              o.get("status", {}).get("phase", "Active"), age(o)]),
    "configmaps": ([("Name", S, 0), ("Data", I, 0), ("Age", S, 0)],
                   lambda o: [o["metadata"]["name"],
                              len(o.get("data") or {}) + len(o.get("binaryData") or {}), age(o)]),
    "secrets": ([("Name", S, 0), ("Type", S, 0), ("Data", I, 0), ("Age", S, 0)],
                lambda o: [o["metadata"]["name"], o.get("type", "Opaque"),
                           len(o.get("data") or {}), age(o)]),
    "jobs": ([("Name", S, 0), ("Status", S, 0), ("Completions", S, 0), ("Duration", S, 0),
              ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1)], _job),
    "cronjobs": ([("Name", S, 0), ("Schedule", S, 0), ("Timezone", S, 0), ("Suspend", S, 0),
                  ("Active", I, 0), ("Last Schedule", S, 0), ("Age", S, 0)], _cronjob),
    "events": ([("Last Seen", S, 0), ("Type", S, 0), ("Reason", S, 0), ("Object", S, 0),
                ("Message", S, 0)], _event),
    "horizontalpodautoscalers": ([("Name", S, 0), ("Reference", S, 0), ("Targets", S, 0),
                                  ("MinPods", I, 0), ("MaxPods", I, 0), ("Replicas", I, 0),
                                  ("Age", S, 0)], _hpa),
    "persistentvolumeclaims": ([("Name", S, 0), ("Status", S, 0), ("Volume", S, 0),
                                ("Capacity", S, 0), ("Access Modes", S, 0),
                                ("StorageClass", S, 0), ("VolumeAttributesClass", S, 0),
                                ("Age", S, 0)], _pvc),
    "ingresses": ([("Name", S, 0), ("Class", S, 0), ("Hosts", S, 0), ("Address", S, 0),
                   ("Ports", S, 0), ("Age", S, 0)], _ingress),
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(plural: str, objects: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    """A `meta.k8s.io/v1 Table` of `objects`, each row carrying its PartialObjectMetadata."""
    columns, row_of = TABLES.get(plural, ([("Name", S, 0), ("Age", S, 0)], _default))
    defs = [{"name": name, "type": typ, "format": "name" if name == "Name" else "",
             "description": "", "priority": prio} for name, typ, prio in columns]
    rows = [{"cells": row_of(o)[:len(columns)],
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata", {})}} for o in objects]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version}, "columnDefinitions": defs,
            "rows": rows}
