"""Analyzers: small registered functions that read the runbook's kubectl output (parsed JSON,
never table text, except `kubectl top`, which has no JSON form) and return findings.

Each analyzer gets the gathered step outputs and returns zero or more Findings; `analyze` runs
every analyzer registered for the card's resource and sorts the findings worst first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .findings import (
    Finding, Suggestion, event_line, field_line, log_line, untrusted, worst_first,
)


@dataclass(frozen=True)
class StepOutput:
    """One step as it ran (or why it did not)."""

    id: str
    command: str
    exit_code: int | None  # None: the step did not run
    stdout: str = ""
    stderr: str = ""
    data: Any = None  # the parsed JSON of an `output: json` step that succeeded
    skipped: str | None = None
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Gathered:
    resource: str
    namespace: str | None
    name: str
    steps: dict[str, StepOutput] = field(default_factory=dict)

    def json(self, step: str) -> Any:
        out = self.steps.get(step)
        return out.data if out is not None and out.ok else None

    def text(self, step: str) -> str | None:
        out = self.steps.get(step)
        return out.stdout if out is not None and out.ok else None

    def events(self, step: str = "events") -> list[dict[str, Any]]:
        data = self.json(step)
        items = data.get("items") if isinstance(data, dict) else None
        return [e for e in items or [] if isinstance(e, dict)]


Analyzer = Callable[[Gathered], list[Finding]]
ANALYZERS: dict[str, list[Analyzer]] = {}


def analyzer(resource: str) -> Callable[[Analyzer], Analyzer]:
    """Register an analyzer for the runbooks of one resource kind."""
    def register(fn: Analyzer) -> Analyzer:
        ANALYZERS.setdefault(resource, []).append(fn)
        return fn
    return register


def analyze(gathered: Gathered) -> list[Finding]:
    """Every registered analyzer's findings for this runbook, worst first, one per cause."""
    found: list[Finding] = []
    for fn in ANALYZERS.get(gathered.resource, []):
        found.extend(fn(gathered))
    unique: dict[tuple[str, str, str], Finding] = {}
    for f in found:
        unique.setdefault((f.reason, f.object, f.summary), f)
    return worst_first(list(unique.values()))


# --------------------------------------------------------------------------- helpers

def _get(obj: Any, *path: Any) -> Any:
    for key in path:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and -len(obj) <= key < len(obj) else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def _ref(kind: str, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{kind}/{ns}/{meta.get('name')}" if ns else f"{kind}/{meta.get('name')}"


def owner_of(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the workload that controls a pod: a ReplicaSet named like its Deployment
    plus the pod's pod-template-hash label is that Deployment (how the controller names it)."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if not isinstance(ref, dict) or not ref.get("controller"):
            continue
        kind, name = str(ref.get("kind", "")).lower(), str(ref.get("name", ""))
        pod_hash = (meta.get("labels") or {}).get("pod-template-hash")
        if kind == "replicaset" and pod_hash and name.endswith(f"-{pod_hash}"):
            return "deployment", name[: -len(pod_hash) - 1]
        return kind, name
    return None


def _workload_suggestion(pod: dict[str, Any], intent: str, why: str) -> Suggestion | None:
    owner = owner_of(pod)
    if owner is None or owner[0] not in ("deployment", "statefulset", "daemonset"):
        return None
    return Suggestion(intent, owner[0], owner[1], why)


def _container_logs(text: str | None, pod: str, container: str, n: int = 3) -> list[str]:
    """The last n lines of one container in `kubectl logs --all-containers --prefix` output."""
    if not text:
        return []
    prefix = f"[pod/{pod}/{container}] "
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix) and ln[len(prefix):].strip()]
    return lines[-n:]


def _events_about(events: list[dict[str, Any]], *reasons: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("reason") in reasons]


def _statuses(pod: dict[str, Any]) -> list[tuple[str, int, dict[str, Any], dict[str, Any]]]:
    """(status list name, index, container status, container spec) for every container."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    out = []
    for status_key, spec_key in (("initContainerStatuses", "initContainers"),
                                 ("containerStatuses", "containers")):
        specs = {c.get("name"): c for c in spec.get(spec_key) or [] if isinstance(c, dict)}
        for i, cs in enumerate(status.get(status_key) or []):
            if isinstance(cs, dict):
                out.append((status_key, i, cs, specs.get(cs.get("name"), {})))
    return out


def _spec_index(pod: dict[str, Any], name: str) -> tuple[str, int] | None:
    for key in ("containers", "initContainers"):
        for i, c in enumerate((pod.get("spec") or {}).get(key) or []):
            if isinstance(c, dict) and c.get("name") == name:
                return key, i
    return None


# --------------------------------------------------------------------------- pods

@dataclass(frozen=True)
class PodView:
    """One pod as the pod analyzers see it: from the pod runbook (with events and logs) or one
    item of a workload's pod list (`prefix` is its path in that list)."""

    pod: dict[str, Any]
    step: str
    prefix: str = ""
    events: tuple[dict[str, Any], ...] = ()
    events_step: str = "events"
    logs: str | None = None
    previous: str | None = None
    top: StepOutput | None = None

    @property
    def name(self) -> str:
        return str((self.pod.get("metadata") or {}).get("name", ""))

    @property
    def ref(self) -> str:
        return _ref("pod", self.pod)

    def at(self, path: str, value: Any) -> str:
        return field_line(self.step, f"{self.prefix}{path}", value)


PodAnalyzer = Callable[[PodView], list[Finding]]
POD_ANALYZERS: list[PodAnalyzer] = []


def pod_analyzer(fn: PodAnalyzer) -> PodAnalyzer:
    """Register an analyzer of one pod (used by the pod runbook and the workloads' pod lists)."""
    POD_ANALYZERS.append(fn)
    return fn


def analyze_pod(view: PodView) -> list[Finding]:
    out: list[Finding] = []
    for fn in POD_ANALYZERS:
        out.extend(fn(view))
    return out


_SCHED_PART = re.compile(r"^(\d+) (.*)$")


@pod_analyzer
def unschedulable(v: PodView) -> list[Finding]:
    """Pending: the scheduler's message names why no node fits (resources, selectors, taints,
    an unbound claim, cordoned nodes)."""
    status = v.pod.get("status") or {}
    if status.get("phase") != "Pending":
        return []
    for i, cond in enumerate(status.get("conditions") or []):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            break
    else:
        return []
    message = str(cond.get("message") or "")
    spec = v.pod.get("spec") or {}
    body = message.split(". preemption:")[0]
    body = body.split("nodes are available: ", 1)[-1].rstrip(".")
    causes: list[tuple[int, str]] = []
    evidence = [v.at(f"status.conditions[{i}].reason", cond.get("reason")),
                v.at(f"status.conditions[{i}].message", untrusted(message))]
    for part in (p.strip() for p in body.split(", ")):
        m = _SCHED_PART.match(part)
        count, what = (int(m.group(1)), m.group(2)) if m else (0, part)
        nodes = f"{count} node{'s' if count != 1 else ''}"
        if what.startswith("Insufficient "):
            res = what.removeprefix("Insufficient ")
            asked = []
            for j, c in enumerate(spec.get("containers") or []):
                req = _get(c, "resources", "requests", res)
                if req is not None:
                    asked.append(str(req))
                    evidence.append(v.at(f"spec.containers[{j}].resources.requests.{res}", req))
            causes.append((count, f"{nodes} {'lacks' if count == 1 else 'lack'} the {res} it "
                           "requests"
                           + (f" ({' + '.join(asked)})" if asked else "")))
        elif "didn't match Pod's node affinity/selector" in what:
            sel = spec.get("nodeSelector") or {}
            if sel:
                evidence.append(v.at("spec.nodeSelector", sel))
            shown = ",".join(f"{k}={val}" for k, val in sorted(sel.items()))
            causes.append((count, f"{nodes} {'does' if count == 1 else 'do'} not match its "
                           "node selector"
                           + (f" {shown}" if shown else "/affinity")))
        elif "untolerated taint" in what:
            taint = what.split("untolerated taint", 1)[1].strip(" {}").rstrip(":").strip()
            causes.append((count, f"{nodes} {'has' if count == 1 else 'have'} a taint it does "
                           f"not tolerate ({taint})"))
        elif "unbound immediate PersistentVolumeClaims" in what or "unbound" in what:
            claims = [vol["persistentVolumeClaim"].get("claimName") for vol in
                      spec.get("volumes") or [] if isinstance(vol, dict)
                      and isinstance(vol.get("persistentVolumeClaim"), dict)]
            for j, vol in enumerate(spec.get("volumes") or []):
                if isinstance(vol, dict) and isinstance(vol.get("persistentVolumeClaim"), dict):
                    evidence.append(v.at(f"spec.volumes[{j}].persistentVolumeClaim.claimName",
                                         vol["persistentVolumeClaim"].get("claimName")))
            causes.append((10**6, "its PersistentVolumeClaim "
                           + (", ".join(str(c) for c in claims) or "") + " is not bound"))
        elif "were unschedulable" in what:
            causes.append((count, f"{nodes} {'are' if count != 1 else 'is'} cordoned"))
        elif what:
            causes.append((count, untrusted(what)))
    causes.sort(key=lambda c: -c[0])
    summary = f"pod {v.name} cannot be scheduled: " + "; ".join(c for _, c in causes or
                                                                  [(0, "no node fits")])
    for e in _events_about(list(v.events), "FailedScheduling")[-1:]:
        evidence.append(event_line(v.events_step, e))
    return [Finding("error", "Unschedulable", summary, evidence, v.ref, priority=10)]


_PULL_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")


def _registry_error(message: str) -> str:
    """The registry's own words at the end of a kubelet 'Failed to pull image' message."""
    tail = message.rsplit("desc = ", 1)[-1]
    return untrusted(tail.rsplit(": ", 1)[-1]) if ": " in tail else untrusted(tail)


@pod_analyzer
def image_pull(v: PodView) -> list[Finding]:
    out = []
    for key, i, cs, spec in _statuses(v.pod):
        waiting = _get(cs, "state", "waiting") or {}
        if waiting.get("reason") not in _PULL_REASONS:
            continue
        image = spec.get("image") or cs.get("image")
        where = _spec_index(v.pod, str(cs.get("name")))
        evidence = [v.at(f"status.{key}[{i}].state.waiting.reason", waiting["reason"])]
        if where:
            evidence.append(v.at(f"spec.{where[0]}[{where[1]}].image", image))
        failed = [e for e in _events_about(list(v.events), "Failed")
                  if "Failed to pull image" in str(e.get("message", ""))]
        error = _registry_error(str(failed[-1]["message"])) if failed else ""
        evidence += [event_line(v.events_step, e) for e in failed[-1:]]
        if not failed and waiting.get("message"):
            evidence.append(v.at(f"status.{key}[{i}].state.waiting.message", waiting["message"]))
        summary = (f"container {cs.get('name')} cannot pull image {image}"
                   + (f": the registry says {error!r}" if error else ""))
        out.append(Finding("error", str(waiting["reason"]), summary, evidence, v.ref,
                           _workload_suggestion(v.pod, "rollback", "roll back to the revision "
                                                "whose image pulled"), priority=20))
    return out


_CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
_REF = re.compile(r"(?:key (\S+) in |)(Secret|ConfigMap|secret|configmap) \"?([-a-z0-9./]+)\"?")


@pod_analyzer
def container_config(v: PodView) -> list[Finding]:
    """A container that cannot be created: a missing ConfigMap/Secret, or a key missing in one."""
    out = []
    for key, i, cs, spec in _statuses(v.pod):
        waiting = _get(cs, "state", "waiting") or {}
        if waiting.get("reason") not in _CONFIG_REASONS:
            continue
        message = str(waiting.get("message") or "")
        evidence = [v.at(f"status.{key}[{i}].state.waiting.reason", waiting["reason"]),
                    v.at(f"status.{key}[{i}].state.waiting.message", message)]
        where = _spec_index(v.pod, str(cs.get("name")))
        missing = ""
        m = _REF.search(message)
        if m:
            ref_name = m.group(3).rsplit("/", 1)[-1]
            kind = "secretKeyRef" if m.group(2).lower() == "secret" else "configMapKeyRef"
            for j, env in enumerate(spec.get("env") or []):
                ref = _get(env, "valueFrom", kind)
                if isinstance(ref, dict) and ref.get("name") == ref_name and where:
                    evidence.append(v.at(f"spec.{where[0]}[{where[1]}].env[{j}].valueFrom.{kind}",
                                         ref))
            what = "Secret" if kind == "secretKeyRef" else "ConfigMap"
            missing = (f"key {m.group(1)} is missing from {what} {ref_name}" if m.group(1)
                       else f"{what} {ref_name} is missing")
        summary = (f"container {cs.get('name')} cannot start: "
                   + (missing or f"{waiting['reason']} ({untrusted(message)})"))
        out.append(Finding("error", str(waiting["reason"]), summary, evidence, v.ref,
                           _workload_suggestion(v.pod, "restart", "after adding the missing "
                                                "key or object, restart so new pods read it"),
                           priority=20))
    return out


_TOP_ROW = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


def _top_memory(top: StepOutput | None, pod: str, container: str) -> str | None:
    """Memory use of one container from `kubectl top pod --containers` (POD NAME CPU MEMORY)."""
    if top is None or not top.ok:
        return None
    for line in top.stdout.splitlines()[1:]:
        m = _TOP_ROW.match(line.strip())
        if m and m.group(1) == pod and m.group(2) == container:
            return m.group(4)
    return None


_QUANTITY = re.compile(r"^([1-9][0-9]{0,5})(Ki|Mi|Gi|Ti|k|M|G|T)?$")


def _double_quantity(q: str) -> str | None:
    """Twice a whole-number memory quantity (64Mi -> 128Mi); None for anything else."""
    m = _QUANTITY.match(q)
    if m is None or int(m.group(1)) * 2 > 999999:
        return None
    return f"{int(m.group(1)) * 2}{m.group(2) or ''}"


@pod_analyzer
def oom_killed(v: PodView) -> list[Finding]:
    out = []
    for key, i, cs, spec in _statuses(v.pod):
        for state in ("state", "lastState"):
            term = _get(cs, state, "terminated") or {}
            if term.get("reason") == "OOMKilled":
                break
        else:
            continue
        where = _spec_index(v.pod, str(cs.get("name")))
        limit = _get(spec, "resources", "limits", "memory")
        evidence = [v.at(f"status.{key}[{i}].{state}.terminated.reason", "OOMKilled"),
                    v.at(f"status.{key}[{i}].{state}.terminated.exitCode", term.get("exitCode")),
                    v.at(f"status.{key}[{i}].restartCount", cs.get("restartCount", 0))]
        if limit is not None and where:
            evidence.append(v.at(f"spec.{where[0]}[{where[1]}].resources.limits.memory", limit))
        used = _top_memory(v.top, v.name, str(cs.get("name")))
        if used is not None:
            evidence.append(log_line("top", f"{v.name} {cs.get('name')} memory {used}"))
            usage = f"it uses {used} now"
        elif v.top is not None and v.top.exit_code is not None:
            usage = "current use unknown (kubectl top: " + untrusted(
                (v.top.stderr or "no answer").strip().splitlines()[-1]
                if (v.top.stderr or "").strip() else "no answer") + ")"
            evidence.append(log_line("top", (v.top.stderr or "").strip().splitlines()[-1]
                                     if (v.top.stderr or "").strip() else "no output"))
        else:
            usage = "current use not measured"
        summary = (f"container {cs.get('name')} was killed for running out of memory "
                   f"(exit code {term.get('exitCode')}, {cs.get('restartCount', 0)} restarts): "
                   + (f"its memory limit is {limit}" if limit else "it has no memory limit, "
                      "so the node ran out") + f"; {usage}")
        suggest = None
        doubled = _double_quantity(str(limit)) if limit is not None else None
        base = _workload_suggestion(v.pod, "set-resources", "")
        if base is not None and doubled is not None:
            suggest = replace(base, params=(("limits", f"memory={doubled}"),
                                            ("container", str(cs.get("name")))),
                              why=f"raise the memory limit ({limit} now; twice that shown, "
                                  "set it above the measured peak)")
        out.append(Finding("error", "OOMKilled", summary, evidence, v.ref, suggest,
                           priority=15))
    return out


@pod_analyzer
def crash_loop(v: PodView) -> list[Finding]:
    out = []
    for key, i, cs, _ in _statuses(v.pod):
        waiting = _get(cs, "state", "waiting") or {}
        last = _get(cs, "lastState", "terminated") or {}
        if waiting.get("reason") != "CrashLoopBackOff" or last.get("reason") == "OOMKilled":
            continue
        name = str(cs.get("name"))
        evidence = [v.at(f"status.{key}[{i}].state.waiting.reason", "CrashLoopBackOff"),
                    v.at(f"status.{key}[{i}].lastState.terminated.exitCode", last.get("exitCode")),
                    v.at(f"status.{key}[{i}].restartCount", cs.get("restartCount", 0))]
        lines = _container_logs(v.previous, v.name, name)
        evidence += [log_line("previous-logs", ln) for ln in lines]
        code = last.get("exitCode")
        summary = (f"container {name} keeps crashing: exit code {code}"
                   + (f" ({last['reason']})" if last.get("reason") else "")
                   + f", {cs.get('restartCount', 0)} restarts"
                   + ("; its last log lines before the crash are quoted below" if lines
                      else "; no log from the crashed instance"))
        out.append(Finding("error", "CrashLoopBackOff", summary, evidence, v.ref,
                           _workload_suggestion(v.pod, "rollback", "if the crashes began with "
                                                "the last rollout, roll back to the previous "
                                                "revision"), priority=20))
    return out


def _probe_target(probe: dict[str, Any]) -> str:
    if isinstance(probe.get("httpGet"), dict):
        h = probe["httpGet"]
        return f"HTTP GET {str(h.get('scheme', 'HTTP')).lower()}://:{h.get('port')}{h.get('path', '/')}"
    if isinstance(probe.get("tcpSocket"), dict):
        return f"TCP port {probe['tcpSocket'].get('port')}"
    if isinstance(probe.get("grpc"), dict):
        return f"gRPC port {probe['grpc'].get('port')}"
    if isinstance(probe.get("exec"), dict):
        return "exec " + " ".join(str(a) for a in probe["exec"].get("command") or [])
    return "a probe"


_STATUS_CODE = re.compile(r"statuscode: (\d{3})")


@pod_analyzer
def failing_probe(v: PodView) -> list[Finding]:
    out = []
    unhealthy = _events_about(list(v.events), "Unhealthy")
    for key, i, cs, spec in _statuses(v.pod):
        for kind, field_ in (("Liveness", "livenessProbe"), ("Readiness", "readinessProbe"),
                             ("Startup", "startupProbe")):
            probe = spec.get(field_)
            if not isinstance(probe, dict):
                continue
            hits = [e for e in unhealthy if str(e.get("message", "")).startswith(f"{kind} probe")]
            if not hits:
                continue
            where = _spec_index(v.pod, str(cs.get("name")))
            target = _probe_target(probe)
            code = _STATUS_CODE.search(str(hits[-1].get("message", "")))
            result = f"answered HTTP {code.group(1)}" if code else "failed"
            count = sum(int(e.get("count") or 1) for e in hits)
            evidence = [v.at(f"status.{key}[{i}].ready", cs.get("ready"))]
            if where:
                evidence.append(v.at(f"spec.{where[0]}[{where[1]}].{field_}", probe))
            evidence.append(event_line(v.events_step, hits[-1]))
            effect = {"Readiness": "the pod gets no traffic",
                      "Liveness": "the kubelet restarts the container",
                      "Startup": "the container is restarted before it starts"}[kind]
            summary = (f"the {kind.lower()} probe of container {cs.get('name')} fails: {target} "
                       f"{result} ({count} times); {effect}")
            out.append(Finding("error", f"{kind}ProbeFailed", summary, evidence, v.ref,
                               priority=30))
    return out


@pod_analyzer
def terminated_with_error(v: PodView) -> list[Finding]:
    out = []
    for key, i, cs, _ in _statuses(v.pod):
        term = _get(cs, "state", "terminated") or {}
        if not term or term.get("exitCode") in (0, None) or term.get("reason") == "OOMKilled":
            continue
        summary = (f"container {cs.get('name')} exited with code {term.get('exitCode')}"
                   + (f" ({term['reason']})" if term.get("reason") else ""))
        evidence = [v.at(f"status.{key}[{i}].state.terminated.exitCode", term.get("exitCode"))]
        evidence += [log_line("logs", ln) for ln in _container_logs(v.logs, v.name,
                                                                    str(cs.get("name")))]
        out.append(Finding("error", "ContainerFailed", summary, evidence, v.ref, priority=35))
    return out


@pod_analyzer
def evicted(v: PodView) -> list[Finding]:
    status = v.pod.get("status") or {}
    if status.get("reason") != "Evicted":
        return []
    return [Finding("error", "Evicted", f"pod {v.name} was evicted by the kubelet",
                    [v.at("status.reason", "Evicted"), v.at("status.message",
                                                             status.get("message", ""))],
                    v.ref, priority=10)]


@pod_analyzer
def not_ready(v: PodView) -> list[Finding]:
    """A running pod that is not ready, when no other analyzer explains why."""
    status = v.pod.get("status") or {}
    if status.get("phase") != "Running":
        return []
    for i, cond in enumerate(status.get("conditions") or []):
        if cond.get("type") == "Ready" and cond.get("status") != "True":
            evidence = [v.at(f"status.conditions[{i}].status", cond.get("status"))]
            if cond.get("message"):
                evidence.append(v.at(f"status.conditions[{i}].message", cond["message"]))
            return [Finding("warning", "NotReady", f"pod {v.name} is running but not ready",
                            evidence, v.ref, priority=90)]
    return []


def _drop_explained(findings: list[Finding]) -> list[Finding]:
    """`NotReady` only when nothing more specific explains the same pod."""
    explained = {f.object for f in findings if f.reason != "NotReady"}
    return [f for f in findings if f.reason != "NotReady" or f.object not in explained]


@analyzer("pod")
def pod_runbook(g: Gathered) -> list[Finding]:
    pod = g.json("pod")
    if not isinstance(pod, dict):
        return []
    view = PodView(pod, "pod", events=tuple(g.events()), logs=g.text("logs"),
                   previous=_prefixed(g.steps.get("previous-logs"), pod),
                   top=g.steps.get("top"))
    found = _drop_explained(analyze_pod(view))
    owner = g.json("owner")
    if isinstance(owner, dict) and owner.get("kind") == "Deployment":
        found += _symptoms(deployment_state(owner, "owner"),
                          caused=any(f.severity == "error" for f in found))
    return found


def _prefixed(step: StepOutput | None, pod: dict[str, Any]) -> str | None:
    """A logs step's text with kubectl's `[pod/NAME/CONTAINER] ` prefix on every line: a step
    run without `--prefix` read one container (`-c`, else the default or only one)."""
    if step is None or not step.ok:
        return None
    if "--prefix" in step.command.split():
        return step.stdout
    words = step.command.split()
    container = words[words.index("-c") + 1] if "-c" in words[:-1] else None
    meta = pod.get("metadata") or {}
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    container = (container or (meta.get("annotations") or {}).get(
        "kubectl.kubernetes.io/default-container") or (names[0] if len(names) == 1 else None))
    if container is None:
        return None
    head = f"[pod/{meta.get('name')}/{container}] "
    return "".join(head + line + "\n" for line in step.stdout.splitlines())


def _symptoms(findings: list[Finding], caused: bool) -> list[Finding]:
    """The workload's own state after its pods' causes: when a pod finding names the cause, the
    workload's finding is its symptom and suggests nothing of its own."""
    return [replace(f, priority=60, suggest=None if caused else f.suggest) for f in findings]


# --------------------------------------------------------------------------- workloads

def deployment_state(dep: dict[str, Any], step: str) -> list[Finding]:
    status = dep.get("status") or {}
    spec = dep.get("spec") or {}
    ref = _ref("deployment", dep)
    name = (dep.get("metadata") or {}).get("name")
    desired = int(spec.get("replicas", 1) or 0)
    available = int(status.get("availableReplicas", 0) or 0)
    unavailable = int(status.get("unavailableReplicas", 0) or 0)
    conds = {c.get("type"): (i, c) for i, c in enumerate(status.get("conditions") or [])
             if isinstance(c, dict)}
    counts = [field_line(step, "status.availableReplicas", available) if "availableReplicas"
              in status else field_line(step, "spec.replicas", desired)]
    if "unavailableReplicas" in status:
        counts.append(field_line(step, "status.unavailableReplicas", unavailable))
    out = []
    i, prog = conds.get("Progressing", (None, None))
    if prog and prog.get("reason") == "ProgressDeadlineExceeded":
        summary = (f"the rollout of deployment {name} is stuck: no progress within "
                   f"{spec.get('progressDeadlineSeconds', 600)}s; {available}/{desired} replicas "
                   f"available, {unavailable} unavailable")
        evidence = [field_line(step, f"status.conditions[{i}].reason", prog["reason"]),
                    field_line(step, f"status.conditions[{i}].message", prog.get("message", "")),
                    *counts]
        out.append(Finding("error", "ProgressDeadlineExceeded", summary, evidence, ref,
                           Suggestion("rollback", "deployment", str(name),
                                      "undo the rollout that does not progress"), priority=40))
    elif (conds.get("Available", (0, {}))[1] or {}).get("status") == "False":
        i, av = conds["Available"]
        out.append(Finding("warning", "MinimumReplicasUnavailable",
                           f"deployment {name} has {available}/{desired} replicas available",
                           [field_line(step, f"status.conditions[{i}].reason", av.get("reason")),
                            *counts], ref, priority=45))
    if spec.get("paused"):
        out.append(Finding("info", "Paused", f"the rollout of deployment {name} is paused",
                           [field_line(step, "spec.paused", True)], ref,
                           Suggestion("resume", "deployment", str(name), "resume the rollout"),
                           priority=50))
    return out


def _pods_of(g: Gathered, step: str = "pods") -> list[tuple[int, dict[str, Any]]]:
    data = g.json(step)
    return [(i, p) for i, p in enumerate((data or {}).get("items") or []) if isinstance(p, dict)]


@analyzer("deployment")
def deployment_runbook(g: Gathered) -> list[Finding]:
    dep = g.json("deployment")
    if not isinstance(dep, dict):
        return []
    pods = _pods_of(g)
    per_pod = [(pod, _drop_explained(analyze_pod(PodView(pod, "pods", prefix=f"items[{i}]."))))
               for i, pod in pods]
    # The same cause in several replicas is one finding that counts them.
    groups: dict[tuple[str, str], list[Finding]] = {}
    for pod, findings in per_pod:
        for f in findings:
            key = (f.reason, f.summary.replace(str(pod["metadata"].get("name")), "<pod>"))
            groups.setdefault(key, []).append(f)
    found = [replace(fs[0], summary=f"{len(fs)} of {len(pods)} pods: {fs[0].summary}")
             for fs in groups.values()]
    found += _symptoms(deployment_state(dep, "deployment"),
                       caused=any(f.severity == "error" for f in found))
    for e in g.events():
        if e.get("type") == "Warning":
            found.append(Finding("warning", str(e.get("reason") or "Warning"),
                                 f"warning event on deployment {dep['metadata'].get('name')}",
                                 [event_line("events", e)], _ref("deployment", dep),
                                 priority=80))
    return found


# --------------------------------------------------------------------------- services, claims, nodes

@analyzer("service")
def service_endpoints(g: Gathered) -> list[Finding]:
    svc = g.json("service")
    if not isinstance(svc, dict):
        return []
    spec = svc.get("spec") or {}
    name = (svc.get("metadata") or {}).get("name")
    ns = (svc.get("metadata") or {}).get("namespace")
    selector = spec.get("selector") or {}
    ref = _ref("service", svc)
    if not selector:
        if spec.get("type") == "ExternalName":
            return []
        return [Finding("info", "NoSelector", f"service {name} has no selector: its endpoints "
                        "are managed by hand", [field_line("service", "spec.selector", {})], ref)]
    shown = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    evidence = [field_line("service", "spec.selector", selector)]
    pods = _pods_of(g)
    if g.json("pods") is None:
        return []
    evidence.append(field_line("pods", "items", f"{len(pods)} pods"))
    if not pods:
        return [Finding("error", "NoEndpoints", f"service {name} selects {shown}, which matches "
                        f"no pod in {ns}: it has no endpoints and its traffic is dropped",
                        evidence, ref, priority=10)]
    ready = [p for _, p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                        for c in (p.get("status") or {}).get("conditions") or [])]
    if not ready:
        return [Finding("error", "NoReadyEndpoints", f"service {name} selects {len(pods)} pods "
                        f"({shown}) and none is ready: it has no ready endpoints", evidence,
                        ref, priority=10)]
    if len(ready) < len(pods):
        return [Finding("warning", "NotReadyEndpoints", f"service {name}: {len(ready)} of "
                        f"{len(pods)} selected pods are ready", evidence, ref, priority=40)]
    return []


_MISSING_CLASS = re.compile(r'storageclass\.storage\.k8s\.io "([-a-z0-9.]+)" not found')


@analyzer("pvc")
def pvc_pending(g: Gathered) -> list[Finding]:
    pvc = g.json("pvc")
    if not isinstance(pvc, dict):
        return []
    phase = (pvc.get("status") or {}).get("phase")
    if phase not in ("Pending", "Lost"):
        return []
    name = (pvc.get("metadata") or {}).get("name")
    spec = pvc.get("spec") or {}
    sc = spec.get("storageClassName")
    evidence = [field_line("pvc", "status.phase", phase),
                field_line("pvc", "spec.storageClassName", sc)]
    failed = _events_about(g.events(), "ProvisioningFailed", "FailedBinding")
    evidence += [event_line("events", e) for e in failed[-1:]]
    if phase == "Lost":
        return [Finding("error", "ClaimLost", f"claim {name} lost its volume "
                        f"{spec.get('volumeName')}", evidence, _ref("pvc", pvc), priority=10)]
    missing = _MISSING_CLASS.search(str(failed[-1].get("message", ""))) if failed else None
    if missing:
        why = f"its storage class {missing.group(1)} does not exist"
    elif failed:
        why = f"provisioning failed ({failed[-1].get('reason')})"
    elif sc is None:
        why = "it names no storage class and the cluster has no default one"
    else:
        why = f"no volume is bound yet (storage class {sc})"
    size = _get(spec, "resources", "requests", "storage")
    return [Finding("error", "ClaimPending", f"claim {name} ({size}) is Pending: {why}",
                    evidence, _ref("pvc", pvc), priority=10)]


_PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


@analyzer("node")
def node_conditions(g: Gathered) -> list[Finding]:
    node = g.json("node")
    if not isinstance(node, dict):
        return []
    name = (node.get("metadata") or {}).get("name")
    ref = _ref("node", node)
    out = []
    for i, c in enumerate((node.get("status") or {}).get("conditions") or []):
        kind, state = c.get("type"), c.get("status")
        ev = [field_line("node", f"status.conditions[{i}].status", state),
              field_line("node", f"status.conditions[{i}].reason", c.get("reason")),
              field_line("node", f"status.conditions[{i}].message", c.get("message", ""))]
        if kind == "Ready" and state != "True":
            what = "stopped reporting (status Unknown)" if state == "Unknown" else "is not ready"
            out.append(Finding("error", "NodeNotReady", f"node {name}: the kubelet {what}; "
                               "its pods are evicted after the toleration period",
                               ev, ref, priority=10))
        elif kind in _PRESSURE and state == "True":
            out.append(Finding("warning", kind, f"node {name} reports {kind}: the kubelet "
                               "evicts pods and the scheduler avoids the node", ev, ref,
                               priority=20))
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        healthy = not out
        out.append(Finding("info", "Cordoned", f"node {name} is cordoned: no new pods land on it",
                           [field_line("node", "spec.unschedulable", True)], ref,
                           Suggestion("uncordon", "node", str(name), "it reports healthy: "
                                      "uncordon it when the maintenance is done")
                           if healthy else None, priority=60))
    return out
