"""The object store of the Kubernetes API stand-in, with controllers in miniature.

Test infrastructure, not a cluster. Objects live in memory keyed by (group, plural, namespace,
name). After every stored write a few controllers converge the world the way kube-controller-manager
would, instantly: Deployments own ReplicaSets (a pod-template change makes a new ReplicaSet with the
next `deployment.kubernetes.io/revision`, the old ones scale to 0), ReplicaSets, StatefulSets and
DaemonSets own Running pods, Jobs own one Succeeded pod; deleting an owner deletes what it owns.
Container logs come from the fixtures' `logs:` section.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

from .resources import RESOURCES, STORAGE, Resource, Selector, field_values

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # group, plural, namespace, name

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString's alphabet
_WORKLOAD_KINDS = {"deployments", "replicasets", "statefulsets", "daemonsets", "jobs",
                   "cronjobs", "horizontalpodautoscalers"}


class ApiError(Exception):
    """An error answered as a `kind: Status` failure, in kube-apiserver's words."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        out: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": self.message, "reason": self.reason}
        if self.details is not None:
            out["details"] = self.details
        out["code"] = self.code
        return out


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.group_resource} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe(digest: bytes, n: int) -> str:
    num = int.from_bytes(digest, "big")
    out = ""
    for _ in range(n):
        num, r = divmod(num, len(_SAFE))
        out += _SAFE[r]
    return out


def _prune(value: Any) -> Any:
    """Drop nulls and empty maps/lists, so a template round-tripped through Go structs by
    `kubectl rollout undo` hashes like the original."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def template_hash(template: Obj) -> str:
    t = copy.deepcopy(template)
    (t.get("metadata", {}).get("labels") or {}).pop(HASH_LABEL, None)
    (t.get("metadata", {}).get("labels") or {}).pop("controller-revision-hash", None)
    canon = json.dumps(_prune(t), sort_keys=True, separators=(",", ":"))
    return _safe(hashlib.sha256(canon.encode()).digest(), 10)


def _owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


def _owner_ref(res: Resource, owner: Obj) -> Obj:
    return {"apiVersion": res.api_version, "kind": res.kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _matches_labels(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _default_pod_spec(spec: Obj, restart_policy: str = "Always") -> None:
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        image = str(c.get("image", ""))
        c.setdefault("imagePullPolicy", "Always" if image.endswith(":latest") or ":" not in
                     image.rsplit("/", 1)[-1] else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})


def apply_defaults(res: Resource, obj: Obj) -> None:
    """The defaults kube-apiserver fills in, for the fields `kubectl describe` shows."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if res.plural == "pods":
        _default_pod_spec(spec)
    elif res.plural in ("deployments", "replicasets", "statefulsets", "daemonsets", "jobs"):
        tmpl_spec = spec.setdefault("template", {}).setdefault("spec", {})
        _default_pod_spec(tmpl_spec, "Never" if res.plural == "jobs" else "Always")
        if res.plural == "deployments":
            spec.setdefault("replicas", 1)
            spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {
                "maxUnavailable": "25%", "maxSurge": "25%"}})
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        elif res.plural == "statefulsets":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                               "rollingUpdate": {"partition": 0}})
        elif res.plural == "daemonsets":
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {
                "maxUnavailable": 1, "maxSurge": 0}})
    elif res.plural == "services":
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")


@dataclass
class LogSpec:
    namespace: str
    selector: dict[str, str]
    container: str
    lines: list[str]
    previous: list[str] = field(default_factory=list)
    pod: str = ""


class Store:
    """In-memory objects with resourceVersions, a change feed for watches, and controllers."""

    def __init__(self, fixtures: Obj) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.load(fixtures)

    # ----- loading -------------------------------------------------------------------------

    def load(self, fixtures: Obj) -> None:
        """Replace everything with the fixtures (also what `POST /_standin/reset` does)."""
        with self.lock:
            self.objects: dict[Key, Obj] = {}
            self.rv = 1000
            self.feed: list[tuple[int, str, tuple[str, str], Obj]] = []
            self._seq = 0
            settings = fixtures.get("standin") or {}
            self.stall_seconds = float(settings.get("stall_seconds", 30))
            # Pod states for failure drills: controller-made pods matching one get its status.
            self.pod_states = [copy.deepcopy(s) for s in fixtures.get("pod_states") or []]
            self.logs = [LogSpec(namespace=s["namespace"], selector=s.get("selector") or {},
                                 container=s["container"], lines=list(s.get("lines") or []),
                                 previous=list(s.get("previous") or []), pod=s.get("pod", ""))
                         for s in fixtures.get("logs") or []]
            # Fixtures look a few days old, as a real cluster's objects would.
            self._clock = now() - dt.timedelta(days=3)
            pending = [copy.deepcopy(o) for o in fixtures.get("objects") or []]
            for obj in pending:
                res = self.resource_of(obj)
                ns = obj["metadata"].get("namespace", "") if res.namespaced else ""
                if res.namespaced and not ns:
                    ns = obj["metadata"]["namespace"] = "default"
                self._prepare_new(res, obj, ns)
                self._write(res, obj, "ADDED")
            # Fixture ReplicaSets name their Deployment in ownerReferences without its uid.
            for key, obj in list(self.objects.items()):
                for ref in obj["metadata"].get("ownerReferences") or []:
                    if not ref.get("uid"):
                        owner = self._find_kind(ref["kind"], key[2], ref["name"])
                        if owner is not None:
                            ref["uid"] = owner["metadata"]["uid"]
                            ref.setdefault("controller", True)
            self.reconcile()
            self._clock = None

    def resource_of(self, obj: Obj) -> Resource:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        group = api_version.split("/")[0] if "/" in api_version else ""
        for r in RESOURCES:
            if r.group == group and r.kind == kind and r.storage is None:
                return r
        raise ApiError(400, "BadRequest", f"no kind {kind!r} is registered for {api_version!r}")

    def _find_kind(self, kind: str, ns: str, name: str) -> Obj | None:
        for r in STORAGE.values():
            if r.kind == kind:
                return self.objects.get((r.group, r.plural, ns, name))
        return None

    def _now(self) -> str:
        return stamp(self._clock or now())

    # ----- low-level writes ----------------------------------------------------------------

    def _prepare_new(self, res: Resource, obj: Obj, ns: str) -> None:
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        if res.namespaced:
            meta["namespace"] = ns
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", self._now())
        if res.plural in _WORKLOAD_KINDS:
            meta.setdefault("generation", 1)
        if res.plural == "namespaces":
            obj.setdefault("status", {"phase": "Active"})
        if res.plural == "events":
            obj.setdefault("firstTimestamp", meta["creationTimestamp"])
            obj.setdefault("lastTimestamp", obj["firstTimestamp"])
        apply_defaults(res, obj)
        if res.plural == "pods":
            self._fill_pod(obj)
        if res.plural == "nodes":
            obj.setdefault("status", {}).setdefault("conditions", [
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status"}])

    def _write(self, res: Resource, obj: Obj, event: str) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (res.group, res.plural, obj["metadata"].get("namespace", ""),
               obj["metadata"]["name"])
        if event == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.feed.append((self.rv, event, (res.group, res.plural), copy.deepcopy(obj)))
        self.changed.notify_all()
        return obj

    def _put(self, res: Resource, obj: Obj) -> bool:
        """Store a controller's change when it is one; True when something changed."""
        key = (res.group, res.plural, obj["metadata"].get("namespace", ""),
               obj["metadata"]["name"])
        old = self.objects.get(key)
        if old is not None:
            a = {**old, "metadata": {**old["metadata"], "resourceVersion": ""}}
            b = {**obj, "metadata": {**obj["metadata"], "resourceVersion": ""}}
            if a == b:
                return False
        self._write(res, obj, "MODIFIED" if old is not None else "ADDED")
        return True

    # ----- reads ---------------------------------------------------------------------------

    def get(self, res: Resource, ns: str, name: str) -> Obj:
        with self.lock:
            obj = self.objects.get((*res.storage_key, ns if res.namespaced else "", name))
            if obj is None:
                raise not_found(res, name)
            return copy.deepcopy(obj)

    def list(self, res: Resource, ns: str | None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[Obj]:
        labels, fields = Selector.parse(label_selector), Selector.parse(field_selector)
        group, plural = res.storage_key
        with self.lock:
            out = []
            for (g, p, o_ns, _), obj in sorted(self.objects.items()):
                if (g, p) != (group, plural) or (ns and o_ns != ns):
                    continue
                if labels.matches(obj["metadata"].get("labels") or {}) and \
                        fields.matches(field_values(obj)):
                    out.append(copy.deepcopy(obj))
            return out

    def list_raw(self, plural: str, ns: str) -> list[Obj]:
        """Stored objects of a storage plural in a namespace (for RBAC lookups)."""
        with self.lock:
            return [o for (g, p, o_ns, _), o in self.objects.items() if p == plural and o_ns == ns]

    def events_since(self, rv: int) -> list[tuple[int, str, tuple[str, str], Obj]]:
        with self.lock:
            return [e for e in self.feed if e[0] > rv]

    # ----- API writes ----------------------------------------------------------------------

    def create(self, res: Resource, ns: str, obj: Obj, dry_run: bool = False) -> Obj:
        with self.lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                self._seq += 1
                meta["name"] = meta["generateName"] + _safe(
                    hashlib.sha256(f"{self._seq}".encode()).digest(), 5)
            name = meta.get("name", "")
            if not name:
                raise ApiError(422, "Invalid", f"{res.kind}.{res.group or 'core'} \"\" is invalid:"
                               " metadata.name: Required value: name or generateName is required",
                               {"kind": res.kind, "group": res.group})
            if res.namespaced:
                if meta.get("namespace") and meta["namespace"] != ns:
                    raise ApiError(400, "BadRequest", "the namespace of the provided object does "
                                   "not match the namespace sent on the request")
                if (("", "namespaces", "", ns) not in self.objects):
                    raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                                   {"name": ns, "kind": "namespaces"})
            key = (*res.storage_key, ns if res.namespaced else "", name)
            if key in self.objects:
                raise ApiError(409, "AlreadyExists",
                               f'{res.group_resource} "{name}" already exists',
                               {"name": name, "group": res.group, "kind": res.plural})
            meta.pop("resourceVersion", None)
            storage = STORAGE[res.storage_key]
            self._prepare_new(storage, obj, ns)
            if dry_run:
                return obj
            self._write(storage, obj, "ADDED")
            self.reconcile()
            return copy.deepcopy(self.objects.get(key, obj))

    def update(self, res: Resource, ns: str, name: str, obj: Obj,
               dry_run: bool = False) -> Obj:
        with self.lock:
            old = self.get(res, ns, name)
            want_rv = obj.get("metadata", {}).get("resourceVersion")
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on '
                               f'{res.group_resource} "{name}": the object has been modified; '
                               "please apply your changes to the latest version and try again",
                               {"name": name, "group": res.group, "kind": res.plural})
            new = copy.deepcopy(obj)
            meta = new.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object "
                               f"({meta.get('name')}) does not match the name on the URL ({name})")
            # Identity and bookkeeping are the server's, whatever the client sent.
            for k in ("uid", "creationTimestamp", "namespace", "generation"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
            meta["name"] = name
            storage = STORAGE[res.storage_key]
            new["apiVersion"], new["kind"] = storage.api_version, storage.kind
            if "status" in old and storage.plural != "namespaces":
                new["status"] = old["status"]  # status only through its subresource
            if storage.plural in _WORKLOAD_KINDS and new.get("spec") != old.get("spec"):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
            apply_defaults(storage, new)
            self._validate(storage, new)
            if dry_run:
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
                return new
            self._write(storage, new, "MODIFIED")
            self.reconcile()
            return copy.deepcopy(self.objects[(*res.storage_key, ns if res.namespaced else "",
                                               name)])

    def delete(self, res: Resource, ns: str, name: str, dry_run: bool = False,
               propagation: str = "Background") -> Obj:
        with self.lock:
            obj = self.get(res, ns, name)
            if dry_run:
                return obj
            self._delete_tree(STORAGE[res.storage_key], obj, propagation)
            self.reconcile()
            return obj

    def _delete_tree(self, res: Resource, obj: Obj, propagation: str) -> None:
        self._write(res, copy.deepcopy(obj), "DELETED")
        uid = obj["metadata"]["uid"]
        if propagation == "Orphan":
            return
        for key, child in list(self.objects.items()):
            if any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or []):
                if key in self.objects:
                    self._delete_tree(STORAGE[(key[0], key[1])], child, propagation)
        if res.plural == "namespaces":
            for key, child in list(self.objects.items()):
                if key[2] == obj["metadata"]["name"] and key in self.objects:
                    self._write(STORAGE[(key[0], key[1])], copy.deepcopy(child), "DELETED")

    def _validate(self, res: Resource, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        name = obj["metadata"]["name"]
        if "replicas" in spec and res.plural in ("deployments", "replicasets", "statefulsets"):
            r = spec["replicas"]
            if not isinstance(r, int) or r < 0:
                raise ApiError(422, "Invalid", f'{res.kind}.{res.group} "{name}" is invalid: '
                               f"spec.replicas: Invalid value: {r}: must be greater than or "
                               "equal to 0", {"name": name, "group": res.group, "kind": res.kind})
        for c in (spec.get("template", {}).get("spec", {}).get("containers") or []):
            if not c.get("image"):
                raise ApiError(422, "Invalid", f'{res.kind}.{res.group} "{name}" is invalid: '
                               "spec.template.spec.containers[0].image: Required value",
                               {"name": name, "group": res.group, "kind": res.kind})

    # ----- the scale subresource -----------------------------------------------------------

    def scale_of(self, res: Resource, obj: Obj) -> Obj:
        sel = obj.get("spec", {}).get("selector", {}).get("matchLabels") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: obj["metadata"][k] for k in
                             ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in obj["metadata"]},
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
                "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in sel.items())}}

    # ----- controllers ---------------------------------------------------------------------

    def reconcile(self) -> None:
        """Converge workloads to their specs (one pass is enough: each step is complete)."""
        with self.lock:
            for plural, fn in (("deployments", self._deployment), ("statefulsets", self._sts),
                               ("daemonsets", self._ds), ("jobs", self._job),
                               ("replicasets", self._rs)):
                group = "batch" if plural == "jobs" else "apps"
                for key in [k for k in self.objects if k[:2] == (group, plural)]:
                    if key in self.objects:
                        fn(copy.deepcopy(self.objects[key]))

    def _res(self, group: str, plural: str) -> Resource:
        return STORAGE[(group, plural)]

    def _children(self, group: str, plural: str, owner: Obj) -> list[Obj]:
        ns = owner["metadata"].get("namespace", "")
        return [copy.deepcopy(o) for (g, p, o_ns, _), o in sorted(self.objects.items())
                if (g, p, o_ns) == (group, plural, ns) and _owned_by(o, owner)]

    def _event(self, obj: Obj, reason: str, message: str, component: str,
               kind_type: str = "Normal", count: int = 1) -> None:
        self._seq += 1
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        t = self._now()
        ev = {"metadata": {"name": f"{meta['name']}.{self._seq:016x}", "namespace": ns},
              "involvedObject": {"kind": obj["kind"], "namespace": meta.get("namespace", ""),
                                 "name": meta["name"], "uid": meta.get("uid", ""),
                                 "apiVersion": obj["apiVersion"],
                                 "resourceVersion": meta.get("resourceVersion", "")},
              "reason": reason, "message": message, "source": {"component": component},
              "firstTimestamp": t, "lastTimestamp": t, "count": count, "type": kind_type,
              "eventTime": None, "reportingComponent": component, "reportingInstance": ""}
        res = self._res("", "events")
        self._prepare_new(res, ev, ns)
        self._write(res, ev, "ADDED")

    def _deployment(self, dep: Obj) -> None:
        spec = dep.get("spec", {})
        if spec.get("paused"):
            return
        rs_res, dep_res = self._res("apps", "replicasets"), self._res("apps", "deployments")
        template = spec.get("template", {})
        h = template_hash(template)
        owned = self._children("apps", "replicasets", dep)
        revs = [int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in owned]
        max_rev = max(revs, default=0)
        desired = int(spec.get("replicas", 1))
        # Like the real controller, an owned ReplicaSet with an equal template (ignoring its
        # hash label) is the deployment's current one: that is how a rollback reuses it.
        new = next((rs for rs in owned
                    if template_hash(rs.get("spec", {}).get("template", {})) == h), None)
        name = dep["metadata"]["name"]
        if new is None:
            tmpl = copy.deepcopy(template)
            tmpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
            sel = copy.deepcopy(spec.get("selector") or {"matchLabels": {}})
            sel.setdefault("matchLabels", {})[HASH_LABEL] = h
            annotations = {REVISION: str(max_rev + 1),
                           "deployment.kubernetes.io/desired-replicas": str(desired),
                           "deployment.kubernetes.io/max-replicas": str(desired + 1)}
            if CHANGE_CAUSE in (dep["metadata"].get("annotations") or {}):
                annotations[CHANGE_CAUSE] = dep["metadata"]["annotations"][CHANGE_CAUSE]
            new = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": f"{name}-{h}",
                                "namespace": dep["metadata"]["namespace"],
                                "labels": copy.deepcopy(tmpl["metadata"]["labels"]),
                                "annotations": annotations,
                                "ownerReferences": [_owner_ref(dep_res, dep)]},
                   "spec": {"replicas": 0, "selector": sel, "template": tmpl}}
            self._prepare_new(rs_res, new, dep["metadata"]["namespace"])
            self._write(rs_res, new, "ADDED")
            new = copy.deepcopy(new)
        elif int(new["metadata"].get("annotations", {}).get(REVISION, "0")) != max_rev:
            # Rolling back to an old template reuses its ReplicaSet under the next revision.
            new["metadata"]["annotations"][REVISION] = str(max_rev + 1)
            cause = (dep["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
            if cause:
                new["metadata"]["annotations"][CHANGE_CAUSE] = cause
        for rs in owned:
            if rs["metadata"]["name"] == new["metadata"]["name"]:
                continue
            old_n = int(rs["spec"].get("replicas", 1))
            if old_n:
                rs["spec"]["replicas"] = 0
                self._put(rs_res, rs)
                self._event(dep, "ScalingReplicaSet",
                            f"Scaled down replica set {rs['metadata']['name']} from {old_n} to 0",
                            "deployment-controller")
        cur = int(new["spec"].get("replicas", 0))
        if cur != desired:
            new["spec"]["replicas"] = desired
            new["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = \
                str(desired)
            new["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] = \
                str(desired + 1)
            word = "up" if desired > cur else "down"
            self._event(dep, "ScalingReplicaSet", f"Scaled {word} replica set "
                        f"{new['metadata']['name']} from {cur} to {desired}",
                        "deployment-controller")
        self._put(rs_res, new)
        for rs in self._children("apps", "replicasets", dep):
            self._rs(rs)
        new = self.objects[("apps", "replicasets", dep["metadata"]["namespace"],
                            new["metadata"]["name"])]
        total = sum(int(rs.get("status", {}).get("replicas", 0))
                    for rs in self._children("apps", "replicasets", dep))
        ready = int(new.get("status", {}).get("readyReplicas", 0))
        dep["metadata"].setdefault("annotations", {})[REVISION] = \
            new["metadata"]["annotations"][REVISION]
        t = self._now()
        old_conds = {c["type"]: c for c in dep.get("status", {}).get("conditions") or []}
        progressing_msg = f'ReplicaSet "{new["metadata"]["name"]}" has successfully progressed.'
        prog = old_conds.get("Progressing")
        if prog is None or prog.get("message") != progressing_msg:
            prog = {"type": "Progressing", "status": "True", "lastUpdateTime": t,
                    "lastTransitionTime": t, "reason": "NewReplicaSetAvailable",
                    "message": progressing_msg}
        avail = old_conds.get("Available") or {
            "type": "Available", "status": "True", "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability."}
        if ready < desired:
            # Like the controller once progressDeadlineSeconds passed without the pods ready.
            avail = {"type": "Available", "status": "False", "lastUpdateTime": t,
                     "lastTransitionTime": t, "reason": "MinimumReplicasUnavailable",
                     "message": "Deployment does not have minimum availability."}
            prog = {"type": "Progressing", "status": "False", "lastUpdateTime": t,
                    "lastTransitionTime": t, "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{new["metadata"]["name"]}" has timed out '
                               "progressing."}
        elif avail.get("status") != "True":
            avail = {"type": "Available", "status": "True", "lastUpdateTime": t,
                     "lastTransitionTime": t, "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability."}
        status: Obj = {"observedGeneration": dep["metadata"].get("generation", 1),
                       "replicas": total, "updatedReplicas": ready, "readyReplicas": ready,
                       "availableReplicas": ready, "conditions": [avail, prog]}
        if total - ready:
            status["unavailableReplicas"] = total - ready
        for k in ("updatedReplicas", "readyReplicas", "availableReplicas"):
            if not status[k]:
                del status[k]
        dep["status"] = status
        self._put(dep_res, dep)

    def _rs(self, rs: Obj) -> None:
        pods = self._children("", "pods", rs)
        desired = int(rs.get("spec", {}).get("replicas", 1))
        pod_res = self._res("", "pods")
        for pod in pods[desired:] if len(pods) > desired else []:
            self._write(pod_res, pod, "DELETED")
            self._event(rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                        "replicaset-controller")
        for _ in range(desired - len(pods)):
            pod = self._new_pod(rs, rs["spec"]["template"], self._suffixed(rs["metadata"]["name"]))
            self._event(rs, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                        "replicaset-controller")
        n = min(desired, len(pods)) + max(0, desired - len(pods))
        # Ready as the pods say: a failure drill's pods (pod_states) are not ready.
        ready = sum(1 for p in self._children("", "pods", rs) if _pod_ready(p))
        status: Obj = {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": ready,
                       "availableReplicas": ready,
                       "observedGeneration": rs["metadata"].get("generation", 1)}
        rs["status"] = {k: v for k, v in status.items() if v or k == "replicas"}
        self._put(self._res("apps", "replicasets"), rs)

    def _suffixed(self, base: str) -> str:
        self._seq += 1
        return f"{base}-{_safe(hashlib.sha256(f'{base}/{self._seq}'.encode()).digest(), 5)}"

    def _revision_label(self, owner: Obj, h: str) -> None:
        """A ControllerRevision per StatefulSet/DaemonSet template, for `rollout history`."""
        name = f"{owner['metadata']['name']}-{h}"
        ns = owner["metadata"]["namespace"]
        cr_res = self._res("apps", "controllerrevisions")
        owned = self._children("apps", "controllerrevisions", owner)
        rev = max((int(c.get("revision", 0)) for c in owned), default=0) + 1
        existing = self.objects.get(("apps", "controllerrevisions", ns, name))
        if existing is not None:
            # As the real controller history does: a template that comes back (a rollback)
            # makes its old revision the newest one again.
            if int(existing.get("revision", 0)) != rev - 1:
                bumped = copy.deepcopy(existing)
                bumped["revision"] = rev
                self._write(cr_res, bumped, "MODIFIED")
            return
        cr = {"metadata": {"name": name, "namespace": ns,
                           "labels": dict(owner["spec"].get("selector", {}).get("matchLabels")
                                          or {}),
                           "ownerReferences": [_owner_ref(self.resource_of(owner), owner)]},
              "data": {"spec": {"template": {**copy.deepcopy(owner["spec"]["template"]),
                                             "$patch": "replace"}}},
              "revision": rev}
        self._prepare_new(cr_res, cr, ns)
        self._write(cr_res, cr, "ADDED")

    def _sts(self, sts: Obj) -> None:
        spec = sts.get("spec", {})
        h = template_hash(spec.get("template", {}))
        self._revision_label(sts, h)
        desired = int(spec.get("replicas", 1))
        name, pod_res = sts["metadata"]["name"], self._res("", "pods")
        pods = {p["metadata"]["name"]: p for p in self._children("", "pods", sts)}
        for pname, pod in pods.items():
            ordinal = int(pname.rsplit("-", 1)[1])
            stale = pod["metadata"].get("labels", {}).get("controller-revision-hash") != \
                f"{name}-{h}"
            if ordinal >= desired or stale:
                self._write(pod_res, pod, "DELETED")
        for i in range(desired):
            if (("", "pods", sts["metadata"]["namespace"], f"{name}-{i}") not in self.objects):
                tmpl = copy.deepcopy(spec.get("template", {}))
                labels = tmpl.setdefault("metadata", {}).setdefault("labels", {})
                labels.update({"controller-revision-hash": f"{name}-{h}",
                               "statefulset.kubernetes.io/pod-name": f"{name}-{i}",
                               "apps.kubernetes.io/pod-index": str(i)})
                self._new_pod(sts, tmpl, f"{name}-{i}")
        rev = f"{name}-{h}"
        sts["status"] = {"observedGeneration": sts["metadata"].get("generation", 1),
                         "replicas": desired, "readyReplicas": desired,
                         "currentReplicas": desired, "updatedReplicas": desired,
                         "availableReplicas": desired, "currentRevision": rev,
                         "updateRevision": rev, "collisionCount": 0}
        self._put(self._res("apps", "statefulsets"), sts)

    def _ds(self, ds: Obj) -> None:
        spec = ds.get("spec", {})
        h = template_hash(spec.get("template", {}))
        self._revision_label(ds, h)
        pod_res = self._res("", "pods")
        nodes = sorted(n["metadata"]["name"] for (g, p, _, _), n in self.objects.items()
                       if (g, p) == ("", "nodes"))
        by_node: dict[str, Obj] = {}
        for pod in self._children("", "pods", ds):
            node = pod.get("spec", {}).get("nodeName", "")
            if node not in nodes or node in by_node or \
                    pod["metadata"].get("labels", {}).get("controller-revision-hash") != h:
                self._write(pod_res, pod, "DELETED")
            else:
                by_node[node] = pod
        for node in nodes:
            if node not in by_node:
                tmpl = copy.deepcopy(spec.get("template", {}))
                tmpl.setdefault("metadata", {}).setdefault("labels", {})[
                    "controller-revision-hash"] = h
                self._new_pod(ds, tmpl, self._suffixed(ds["metadata"]["name"]), node=node)
        n = len(nodes)
        ds["status"] = {"currentNumberScheduled": n, "desiredNumberScheduled": n,
                        "numberReady": n, "numberAvailable": n, "updatedNumberScheduled": n,
                        "numberMisscheduled": 0,
                        "observedGeneration": ds["metadata"].get("generation", 1)}
        self._put(self._res("apps", "daemonsets"), ds)

    def _job(self, job: Obj) -> None:
        if job.get("status", {}).get("conditions"):
            return  # finished (or given a status by the fixtures)
        tmpl = copy.deepcopy(job.get("spec", {}).get("template", {}))
        uid = job["metadata"]["uid"]
        labels = tmpl.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                       "batch.kubernetes.io/job-name": job["metadata"]["name"],
                       "job-name": job["metadata"]["name"]})
        pod = self._new_pod(job, tmpl, self._suffixed(job["metadata"]["name"]))
        pod["status"]["phase"] = "Succeeded"
        for cs in pod["status"]["containerStatuses"]:
            cs.update({"ready": False, "started": False, "state": {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": self._now(),
                "finishedAt": self._now()}}})
        self._put(self._res("", "pods"), pod)
        t = self._now()
        completions = int(job.get("spec", {}).get("completions", 1))
        job["status"] = {"startTime": t, "completionTime": t, "succeeded": completions,
                         "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
                         "conditions": [
                             {"type": "SuccessCriteriaMet", "status": "True",
                              "lastProbeTime": t, "lastTransitionTime": t,
                              "reason": "CompletionsReached",
                              "message": "Reached expected number of succeeded pods"},
                             {"type": "Complete", "status": "True", "lastProbeTime": t,
                              "lastTransitionTime": t, "reason": "CompletionsReached",
                              "message": "Reached expected number of succeeded pods"}]}
        self._put(self._res("batch", "jobs"), job)

    # ----- pods ----------------------------------------------------------------------------

    def _schedulable_nodes(self) -> list[str]:
        return sorted(n["metadata"]["name"] for (g, p, _, _), n in self.objects.items()
                      if (g, p) == ("", "nodes") and not n.get("spec", {}).get("unschedulable"))

    def _new_pod(self, owner: Obj, template: Obj, name: str, node: str | None = None) -> Obj:
        ns = owner["metadata"]["namespace"]
        tmeta = template.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns,
                            "labels": copy.deepcopy(tmeta.get("labels") or {}),
                            "ownerReferences": [_owner_ref(self.resource_of(owner), owner)]},
               "spec": copy.deepcopy(template.get("spec") or {})}
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = copy.deepcopy(tmeta["annotations"])
        if node:
            pod["spec"]["nodeName"] = node
        pod_res = self._res("", "pods")
        self._prepare_new(pod_res, pod, ns)
        self._write(pod_res, pod, "ADDED")
        return copy.deepcopy(pod)

    def _fill_pod(self, pod: Obj) -> None:
        """Schedule a new pod and give it a Running status (unless the fixture set one)."""
        spec = pod.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        unschedulable = any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                            for c in (pod.get("status") or {}).get("conditions") or [])
        if not spec.get("nodeName") and not unschedulable:
            nodes = self._schedulable_nodes()
            if nodes:
                self._seq += 1
                spec["nodeName"] = nodes[self._seq % len(nodes)]
        if pod.get("status", {}).get("phase"):
            return
        drill = self._pod_state(pod)
        if drill is not None:
            self._drill_status(pod, drill)
            return
        self._seq += 1
        t = self._now()
        node = spec.get("nodeName", "")
        statuses = []
        for c in spec.get("containers") or []:
            restarts = 1 if self._log_spec(pod, c.get("name", ""), previous=True) else 0
            cs: Obj = {"name": c.get("name"), "image": c.get("image"),
                       "imageID": f"{c.get('image')}@sha256:{'0' * 64}",
                       "containerID": f"containerd://{uuid.uuid4().hex}",
                       "ready": True, "started": True, "restartCount": restarts,
                       "state": {"running": {"startedAt": t}}, "lastState": {}}
            if restarts:
                cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                                  "startedAt": t, "finishedAt": t}}
            statuses.append(cs)
        ready = [{"type": t_, "status": "True", "lastTransitionTime": t}
                 for t_ in ("PodReadyToStartContainers", "Initialized", "Ready",
                            "ContainersReady", "PodScheduled")]
        node_index = node.rsplit("-", 1)[-1] if node else "0"
        pod["status"] = {"phase": "Running", "conditions": ready,
                         "hostIP": f"10.0.0.{node_index if node_index.isdigit() else 1}",
                         "podIP": f"10.244.{node_index if node_index.isdigit() else 0}."
                                  f"{self._seq % 250 + 2}",
                         "startTime": t, "containerStatuses": statuses, "qosClass": "BestEffort"}
        pod["status"]["podIPs"] = [{"ip": pod["status"]["podIP"]}]

    def _pod_state(self, pod: Obj) -> Obj | None:
        """The fixtures' `pod_states` entry for this pod: same namespace, labels matching its
        selector and, when it names one, a container running that image."""
        labels = pod["metadata"].get("labels") or {}
        images = {c.get("image") for c in pod.get("spec", {}).get("containers") or []}
        for state in self.pod_states:
            if state.get("namespace") != pod["metadata"].get("namespace"):
                continue
            if not _matches_labels(state.get("selector") or {}, labels):
                continue
            if state.get("image") and state["image"] not in images:
                continue
            return state
        return None

    def _drill_status(self, pod: Obj, drill: Obj) -> None:
        """A failing pod's status from its drill, and the kubelet/scheduler events it gives."""
        t = self._now()
        spec = pod["spec"]
        per_container = drill.get("containers") or {}
        statuses = []
        for c in spec.get("containers") or []:
            given = copy.deepcopy(per_container.get(c.get("name"), {}))
            cs: Obj = {"name": c.get("name"), "image": c.get("image"),
                       "imageID": "" if "waiting" in (given.get("state") or {}) and
                       not given.get("restartCount") else f"{c.get('image')}@sha256:{'0' * 64}",
                       "ready": False, "started": False, "restartCount": 0,
                       "state": {"running": {"startedAt": t}}, "lastState": {}}
            cs.update(given)
            for st in (cs.get("state") or {}, cs.get("lastState") or {}):
                for key in ("running", "terminated"):
                    if key in st:
                        st[key].setdefault("startedAt", t)
                        if key == "terminated":
                            st[key].setdefault("finishedAt", t)
            if cs["state"].get("running") or cs["restartCount"]:
                cs.setdefault("containerID", f"containerd://{uuid.uuid4().hex}")
            statuses.append(cs)
        phase = drill.get("phase", "Running")
        status: Obj = {"phase": phase, "qosClass": drill.get("qosClass", "Burstable")}
        conditions = drill.get("conditions")
        if conditions is None:
            conditions = [{"type": t_, "status": "True"} for t_ in
                          ("PodReadyToStartContainers", "Initialized")]
            conditions += [{"type": t_, "status": "False", "reason": "ContainersNotReady",
                            "message": "containers with unready status: ["
                            + " ".join(cs["name"] for cs in statuses if not cs["ready"]) + "]"}
                           for t_ in ("Ready", "ContainersReady")]
            conditions.append({"type": "PodScheduled", "status": "True"})
        for cond in conditions:
            cond.setdefault("lastTransitionTime", t)
            cond.setdefault("lastProbeTime", None)
        status["conditions"] = conditions
        if phase == "Pending" and not any(c.get("type") == "PodScheduled" and
                                          c.get("status") == "True" for c in conditions):
            spec.pop("nodeName", None)  # never scheduled
        else:
            node = spec.get("nodeName", "")
            idx = node.rsplit("-", 1)[-1] if node else "1"
            status.update(hostIP=f"10.0.0.{idx}", startTime=t, containerStatuses=statuses)
            if phase == "Running":
                self._seq += 1
                status["podIP"] = f"10.244.{idx}.{self._seq % 250 + 2}"
                status["podIPs"] = [{"ip": status["podIP"]}]
        pod["status"] = status
        for ev in drill.get("events") or []:
            self._event(pod, ev["reason"], ev["message"], ev.get("component", "kubelet"),
                        ev.get("type", "Warning"), count=int(ev.get("count", 1)))

    # ----- logs ----------------------------------------------------------------------------

    def _log_spec(self, pod: Obj, container: str, previous: bool = False) -> LogSpec | None:
        labels = pod["metadata"].get("labels") or {}
        for spec in self.logs:
            if spec.namespace != pod["metadata"].get("namespace") or spec.container != container:
                continue
            if spec.pod and not pod["metadata"]["name"].startswith(spec.pod):
                continue
            if spec.selector and not _matches_labels(spec.selector, labels):
                continue
            if previous and not spec.previous:
                continue
            return spec
        return None

    def pod_log(self, ns: str, name: str, container: str | None, previous: bool,
                tail: int | None, since: int | None, timestamps: bool) -> str:
        pod = self.get(STORAGE[("", "pods")], ns, name)
        names = [c["name"] for c in (pod["spec"].get("containers") or [])
                 + (pod["spec"].get("initContainers") or [])]
        if container is None:
            if len(names) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod "
                               f"{name}, choose one of: [{' '.join(names)}]")
            container = names[0]
        if container not in names:
            raise ApiError(400, "BadRequest",
                           f"container {container} is not valid for pod {name}")
        spec = self._log_spec(pod, container, previous)
        if previous:
            if spec is None:
                raise ApiError(400, "BadRequest", f'previous terminated container "{container}" '
                               f'in pod "{name}" not found')
            lines = spec.previous
        else:
            lines = spec.lines if spec else []
        # Line i of n was written (n - i) * 30 seconds ago.
        t_now, n = now(), len(lines)
        dated = [(t_now - dt.timedelta(seconds=30 * (n - i)), line) for i, line in
                 enumerate(lines)]
        if since is not None:
            dated = [(t, line) for t, line in dated if (t_now - t).total_seconds() <= since]
        if tail is not None:
            dated = dated[-tail:] if tail > 0 else []
        return "".join(f"{t.strftime('%Y-%m-%dT%H:%M:%S.000000000Z')} {line}\n" if timestamps
                       else f"{line}\n" for t, line in dated)

    def iter_objects(self) -> Iterator[tuple[Key, Obj]]:
        with self.lock:
            yield from sorted(copy.deepcopy(self.objects).items())
