"""Undo: every change records its way back, and one request takes it.

Before a changing command runs, `capture` reads the object it names with one read-only kubectl call
(judged by the policy like any command); after it ran, `finish` reads it once more and computes the
inverse argv from the two states. The audit line carries the result as `undo`:
`{argv, captured_at, before_digest, after_digest}` or `{none: reason}`; the two states are stored
beside the log as `$RAG_K8S_HOME/undo/<operation_id>.yaml` (before; for a deleted object the
manifest that re-creates it) and `<operation_id>.after.yaml`. Secrets are never read or stored.

`plan_undo` turns `{"intent": "undo", "params": {"operation_id": ...}}` into a plan: it uses a line
only from a chain that verifies, checks the stored states against the line's digests, re-reads the
object and refuses when it moved since (naming the field), and otherwise plans the recorded inverse,
which then goes through the same policy, confirmation and audit as any command.

One table, `STRATEGIES`, says per kubectl verb what to read and how to invert it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import audit, execute
from .errors import ArgvError, InvalidRequest, UndoRefused
from .kubectl_argv import ParsedArgv, parse_argv
from .redact import REDACTED
from .vocab import CLUSTER_SCOPED

if TYPE_CHECKING:
    from .config import Settings
    from .planner import Plan
    from .policy import Policy
    from .request import Request

Obj = dict[str, Any]
UNDO_DIR = "undo"
# A captured object may be larger than what a caller is shown; a cut one is never used.
CAPTURE_MAX_BYTES = 4 * 1024 * 1024
# Set by the API server or a controller, never by the user: a change there is no one's edit.
_SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                    "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")
_CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",
                           "deprecated.daemonset.template.generation",
                           # kubectl apply's own bookkeeping: it follows the fields it describes
                           "kubectl.kubernetes.io/last-applied-configuration")
_JOB_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name",
               "batch.kubernetes.io/job-name")
REVISION = "deployment.kubernetes.io/revision"


@dataclass(frozen=True)
class Target:
    """The one object a changing command touches (or will create)."""

    kind: str  # canonical kind (vocab), e.g. deployment, node, hpa
    name: str
    namespace: str | None

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def shown(self) -> str:
        return self.ref + (f" -n {self.namespace}" if self.namespace else "")

    def read_argv(self) -> list[str]:
        argv = ["kubectl", "get", self.ref]
        if self.namespace and self.kind not in CLUSTER_SCOPED:
            argv += ["-n", self.namespace]
        return argv + ["-o", "json", "--ignore-not-found"]


@dataclass(frozen=True)
class NoInverse:
    reason: str


Inverter = Callable[[ParsedArgv, Target, "Obj | None", "Obj | None"], "list[str] | NoInverse"]


@dataclass(frozen=True)
class Strategy:
    """How to undo one kubectl verb: which object to read, and the inverse of the change."""

    target: Callable[[ParsedArgv], Target | NoInverse]
    invert: Inverter


@dataclass(frozen=True)
class Capture:
    """What `capture` learnt before the command ran (None fields when nothing could be read)."""

    target: Target | None
    before: Obj | None  # the raw object, None when absent
    found: bool
    captured_at: str
    none: str | None = None  # why there will be no inverse, known before running


@dataclass(frozen=True)
class UndoContext:
    """A planned undo: the operation it undoes, for the audit line."""

    operation_id: str
    target: Target


# --- states -----------------------------------------------------------------------------------


def state_of(obj: Obj | None) -> Obj | None:
    """The object as its users set it: no status, no server bookkeeping, no controller marks.

    For a deleted object this is also the manifest that re-creates it (`kubectl create -f`)."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    for key in _CONTROLLER_ANNOTATIONS:
        annotations.pop(key, None)
    if "annotations" in meta and not annotations:
        meta.pop("annotations")
    if out.get("kind") == "Job":  # the selector and its labels are generated per Job uid
        spec = out.get("spec") or {}
        if not spec.get("manualSelector"):
            spec.pop("selector", None)
            for labels in (meta.get("labels") or {},
                           ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}):
                for key in _JOB_LABELS:
                    labels.pop(key, None)
    return _pruned(out)  # type: ignore[no-any-return]


def _pruned(value: Any) -> Any:
    """Without nulls and empty maps or lists: the API treats them as absent (`spec: {}` of a
    Node that was never cordoned is the same Node as one without `spec`)."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def digest(state: Obj | None) -> str:
    """sha256 of a state's canonical JSON (`null` for an absent object)."""
    return hashlib.sha256(audit.canonical_json({"state": state})).hexdigest()


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Plain-words differences between two states, one per field that moved (dotted paths)."""
    if old == new:
        return []
    here = path or "the object"
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{sub} was removed (it was {_show(old[key])})")
            elif key not in old:
                out.append(f"{sub} was added ({_show(new[key])})")
            else:
                out += differences(old[key], new[key], sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{here}[{i}]")]
    if old is None:
        return [f"{here} exists again"]
    if new is None:
        return [f"{here} no longer exists"]
    return [f"{here} is {_show(new)} now, was {_show(old)}"]


def _redacted(state: Obj | None) -> bool:
    return state is not None and REDACTED in json.dumps(state)


# --- reading ----------------------------------------------------------------------------------


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def read(target: Target, *, settings: Settings, rules: Policy,
         timeout: float) -> tuple[bool, Obj | None]:
    """(found, object) by one read-only kubectl call the policy allows; raises UndoRefused."""
    from . import policy

    argv = target.read_argv()
    decision = policy.validate(argv, card=None, policy=rules)
    if not decision.allowed:
        raise UndoRefused(f"reading {target.shown()} is not allowed: "
                          + "; ".join(decision.reasons))
    outcome = execute.run(argv, timeout=timeout,
                          settings=settings.with_(max_output_bytes=CAPTURE_MAX_BYTES))
    if outcome.exit_code != 0 or outcome.timed_out:
        problem = (outcome.stderr.strip().splitlines() or [f"exit code {outcome.exit_code}"])[-1]
        raise UndoRefused(f"{target.shown()} could not be read: {problem}")
    if outcome.truncated:
        raise UndoRefused(f"{target.shown()} is larger than {CAPTURE_MAX_BYTES} bytes")
    text = outcome.stdout.strip()
    if not text:
        return False, None
    try:
        obj = json.loads(text)
    except ValueError:
        raise UndoRefused(f"kubectl's answer for {target.shown()} is not JSON") from None
    if not isinstance(obj, dict):
        raise UndoRefused(f"kubectl's answer for {target.shown()} is not an object")
    return True, obj


# --- the table --------------------------------------------------------------------------------


def _named(parsed: ParsedArgv) -> Target | NoInverse:
    if parsed.kind is None or parsed.name is None or len(parsed.names) != 1:
        return NoInverse(f"kubectl {parsed.verb} does not name exactly one object")
    if parsed.kind == "secret":
        return NoInverse("secrets are never read or stored, so a change to one cannot be undone")
    ns = None if parsed.kind in CLUSTER_SCOPED else parsed.namespace
    return Target(parsed.kind, parsed.name, ns)


def _ns_args(target: Target) -> list[str]:
    return ["-n", target.namespace] if target.namespace else []


def _pod_spec(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return ((spec.get("template") or {}).get("spec") or {})


def _invert_scale(parsed: ParsedArgv, t: Target, before: Obj | None,
                  after: Obj | None) -> list[str] | NoInverse:
    if before is None:
        return NoInverse(f"{t.shown()} did not exist before the command")
    old = int((before.get("spec") or {}).get("replicas", 1))
    new = parsed.value("replicas")
    if new is not None and new.isdigit() and int(new) == old:
        return NoInverse(f"the scale changed nothing: {t.ref} already had {old} replicas")
    argv = ["kubectl", "scale", t.ref, *_ns_args(t), f"--replicas={old}"]
    if new is not None and new.isdigit():
        # kubectl checks this precondition itself, closing the gap after the drift check.
        argv.append(f"--current-replicas={int(new)}")
    return argv


def _invert_set_image(parsed: ParsedArgv, t: Target, before: Obj | None,
                      after: Obj | None) -> list[str] | NoInverse:
    if before is None:
        return NoInverse(f"{t.shown()} did not exist before the command")
    spec = _pod_spec(before)
    images = {c.get("name"): c.get("image")
              for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}
    pairs: list[str] = []
    for pair in parsed.extra:
        name, _, image = pair.partition("=")
        names = list(images) if name == "*" else [name]
        for n in names:
            if n not in images:
                return NoInverse(f"{t.ref} has no container {n!r}")
            if images[n] != image and f"{n}={images[n]}" not in pairs:
                pairs.append(f"{n}={images[n]}")
    if not pairs:
        return NoInverse(f"the image change changed nothing: {t.ref} already ran those images")
    return ["kubectl", "set", "image", t.ref, *_ns_args(t), *pairs]


def _invert_rollout(parsed: ParsedArgv, t: Target, before: Obj | None,
                    after: Obj | None) -> list[str] | NoInverse:
    """restart and rollback change the pod template: go back to the revision that ran before."""
    if before is None:
        return NoInverse(f"{t.shown()} did not exist before the command")
    if state_of(before) == state_of(after):
        return NoInverse(f"the command left {t.ref}'s template as it was")
    argv = ["kubectl", "rollout", "undo", t.ref, *_ns_args(t)]
    if t.kind == "deployment":
        revision = ((before.get("metadata") or {}).get("annotations") or {}).get(REVISION)
        if not (isinstance(revision, str) and revision.isdigit()):
            return NoInverse(f"{t.ref} had no revision number before the command")
        argv.append(f"--to-revision={revision}")
    return argv  # StatefulSets and DaemonSets: the previous ControllerRevision


def _autoscale_target(parsed: ParsedArgv) -> Target | NoInverse:
    named = _named(parsed)
    if isinstance(named, NoInverse):
        return named
    return Target("hpa", parsed.value("name") or named.name, named.namespace)


def _invert_created(parsed: ParsedArgv, t: Target, before: Obj | None,
                    after: Obj | None) -> list[str] | NoInverse:
    if before is not None:
        return NoInverse(f"{t.shown()} existed before the command, which created nothing")
    if after is None:
        return NoInverse(f"{t.shown()} does not exist after the command")
    return ["kubectl", "delete", t.ref, *_ns_args(t)]


def _node_flag(want_unschedulable: bool) -> Inverter:
    def invert(parsed: ParsedArgv, t: Target, before: Obj | None,
               after: Obj | None) -> list[str] | NoInverse:
        if before is None:
            return NoInverse(f"node {t.name} did not exist before the command")
        was = bool((before.get("spec") or {}).get("unschedulable", False))
        if was == want_unschedulable:
            state = "cordoned" if was else "schedulable"
            return NoInverse(f"node {t.name} was already {state}: the command changed nothing")
        return ["kubectl", "uncordon" if want_unschedulable else "cordon", t.name]
    return invert


def _no_drain(parsed: ParsedArgv) -> Target | NoInverse:
    node = parsed.name or "NODE"
    return NoInverse(
        "drain evicted the node's pods and their controllers made new ones elsewhere; evictions "
        f"cannot be taken back (`kubectl uncordon {node}` only makes the node schedulable again)"
    )


def _invert_delete(parsed: ParsedArgv, t: Target, before: Obj | None,
                   after: Obj | None) -> list[str] | NoInverse:
    if before is None:
        return NoInverse(f"{t.shown()} did not exist before the command")
    if t.kind == "pod":
        return NoInverse("a deleted pod cannot be brought back; its controller makes a new one")
    if (before.get("metadata") or {}).get("ownerReferences"):
        owner = before["metadata"]["ownerReferences"][0]
        return NoInverse(f"{t.ref} belonged to {owner.get('kind')}/{owner.get('name')}; "
                         "re-creating it by hand would fight its owner's controller")
    if _redacted(state_of(before)):
        return NoInverse(f"{t.ref} held values that look like credentials, which are never "
                         "stored, so it cannot be re-created as it was")
    # The manifest is stored as <operation_id>.yaml; `{manifest}` is replaced by its path.
    return ["kubectl", "create", "-f", "{manifest}", *_ns_args(t)]


def _manifest_target(parsed: ParsedArgv) -> Target | NoInverse:
    """The one object of a `-f` manifest command (apply, create, delete)."""
    from . import manifests
    from .vocab import normalize_resource

    if "kustomize" in parsed.flags:
        return NoInverse("undo of a kustomization is not recorded; undo covers one object")
    try:
        loaded = manifests.load(parsed, settings=None, timeout=0)  # type: ignore[arg-type]
    except manifests.ManifestError as e:
        return NoInverse(f"the manifest could not be read: {e}")
    if len(loaded.objects) != 1:
        return NoInverse(f"the manifests hold {len(loaded.objects)} objects; undo covers a "
                         "manifest of one object")
    (obj,) = loaded.objects
    kind = normalize_resource(obj.kind.lower())
    if kind is None:
        return NoInverse(f"rag-k8s knows no kind {obj.kind!r} to read back")
    if kind == "secret":
        return NoInverse("secrets are never read or stored, so a change to one cannot be undone")
    return Target(kind, obj.name, None if kind in CLUSTER_SCOPED else obj.namespace)


def _target_of(parsed: ParsedArgv) -> Target | NoInverse:
    if "filename" in parsed.flags or "kustomize" in parsed.flags:
        return _manifest_target(parsed)
    return _named(parsed)


def _invert_apply(parsed: ParsedArgv, t: Target, before: Obj | None,
                  after: Obj | None) -> list[str] | NoInverse:
    if before is None:
        return _invert_created(parsed, t, before, after)
    if _redacted(state_of(before)):
        return NoInverse(f"{t.ref} held values that look like credentials, which are never "
                         "stored, so it cannot be put back as it was")
    return ["kubectl", "apply", "-f", "{manifest}", *_ns_args(t)]


# --- the intents of CONTRACT §3 that change metadata, env, resources or create objects ---------


def _is_change_token(token: str) -> bool:
    return "=" in token or ":" in token or (token.endswith("-") and len(token) > 1)


def _object_of(parsed: ParsedArgv) -> Target | NoInverse:
    """kind/name or `kind name` of a verb whose other positionals are key=value changes."""
    names = [n for n in parsed.names if not _is_change_token(n)]
    kind = parsed.kind
    if kind is None or len(names) != 1:
        return NoInverse(f"kubectl {parsed.verb} does not name exactly one object")
    if kind == "secret":
        return NoInverse("secrets are never read or stored, so a change to one cannot be undone")
    return Target(kind, names[0], None if kind in CLUSTER_SCOPED else parsed.namespace)


def _changes(parsed: ParsedArgv) -> list[tuple[str, str | None]]:
    """`key=value` (set) and `key-` (remove) positionals, in order."""
    out: list[tuple[str, str | None]] = []
    for token in [*parsed.names, *parsed.extra]:
        if "=" in token:
            key, _, value = token.partition("=")
            out.append((key, value))
        elif token.endswith("-") and len(token) > 1:
            out.append((token[:-1], None))
    return out


def _metadata_map(field_name: str, verb: str) -> Inverter:
    """label / annotate: put back each key's old value, remove the keys that were added."""
    def invert(parsed: ParsedArgv, t: Target, before: Obj | None,
               after: Obj | None) -> list[str] | NoInverse:
        if before is None:
            return NoInverse(f"{t.shown()} did not exist before the command")
        old = (before.get("metadata") or {}).get(field_name) or {}
        tokens: list[str] = []
        overwrite = False
        for key, new in _changes(parsed):
            if old.get(key) == new:
                continue
            if key in old:
                if REDACTED in str(old[key]):
                    return NoInverse(f"the old value of {key} looks like a credential, which is "
                                     "never stored")
                tokens.append(f"{key}={old[key]}")
                overwrite = overwrite or new is not None
            else:
                tokens.append(f"{key}-")
        tokens = list(dict.fromkeys(tokens))
        if not tokens:
            return NoInverse(f"the command changed no {field_name} of {t.ref}")
        return ["kubectl", verb, t.ref, *_ns_args(t), *tokens,
                *(["--overwrite"] if overwrite else [])]
    return invert


def _taint_text(taint: Obj) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key')}{value}:{taint.get('effect')}"


def _invert_taint(parsed: ParsedArgv, t: Target, before: Obj | None,
                  after: Obj | None) -> list[str] | NoInverse:
    if before is None:
        return NoInverse(f"node {t.name} did not exist before the command")
    old = list((before.get("spec") or {}).get("taints") or [])
    tokens: list[str] = []
    overwrite = False
    for token in [*parsed.names, *parsed.extra]:
        if not _is_change_token(token):
            continue
        removing = token.endswith("-")
        spec = token[:-1] if removing else token
        key_value, _, effect = spec.partition(":")
        key, _, value = key_value.partition("=")
        matching = [x for x in old if x.get("key") == key and (not effect or x.get("effect") == effect)]
        if removing:
            tokens += [_taint_text(x) for x in matching]  # put back what was removed
        elif not matching:
            tokens.append(f"{key}:{effect}-")  # remove what was added
        elif any((x.get("value") or "") != value for x in matching):
            tokens += [_taint_text(x) for x in matching]
            overwrite = True
    tokens = list(dict.fromkeys(tokens))
    if not tokens:
        return NoInverse(f"the command changed no taint of node {t.name}")
    return ["kubectl", "taint", "nodes", t.name, *tokens, *(["--overwrite"] if overwrite else [])]


def _paused(want_paused: bool) -> Inverter:
    def invert(parsed: ParsedArgv, t: Target, before: Obj | None,
               after: Obj | None) -> list[str] | NoInverse:
        if before is None:
            return NoInverse(f"{t.shown()} did not exist before the command")
        was = bool((before.get("spec") or {}).get("paused", False))
        if was == want_paused:
            return NoInverse(f"{t.ref} was already {'paused' if was else 'running'}: the "
                             "command changed nothing")
        return ["kubectl", "rollout", "resume" if want_paused else "pause", t.ref, *_ns_args(t)]
    return invert


def _selected_containers(parsed: ParsedArgv, before: Obj) -> list[Obj]:
    import fnmatch

    spec = _pod_spec(before)
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    pattern = parsed.value("containers") or parsed.value("c") or "*"
    return [c for c in containers if fnmatch.fnmatchcase(str(c.get("name")), pattern)]


def _invert_set_env(parsed: ParsedArgv, t: Target, before: Obj | None,
                    after: Obj | None) -> list[str] | NoInverse:
    if before is None:
        return NoInverse(f"{t.shown()} did not exist before the command")
    if any(f in parsed.flags for f in ("from", "env", "keys", "prefix", "resolve", "list")):
        return NoInverse("undo covers set env with KEY=value and KEY- only")
    chosen = _selected_containers(parsed, before)
    inverses: set[tuple[str, ...]] = set()
    for container in chosen:
        env = {e.get("name"): e for e in container.get("env") or []}
        tokens: list[str] = []
        for key, new in _changes(parsed):
            old = env.get(key)
            if old is not None and "valueFrom" in old:
                return NoInverse(f"{key} was set from a reference (valueFrom), which set env "
                                 "cannot put back")
            old_value = None if old is None else str(old.get("value", ""))
            if old_value == new:
                continue
            if old_value is not None and REDACTED in old_value:
                return NoInverse(f"the old value of {key} looks like a credential, which is "
                                 "never stored")
            tokens.append(f"{key}-" if old is None else f"{key}={old_value}")
        inverses.add(tuple(dict.fromkeys(tokens)))
    inverses.discard(())
    if not inverses:
        return NoInverse(f"the command changed no environment variable of {t.ref}")
    if len(inverses) > 1:
        return NoInverse("the containers had different values before; one set env cannot put "
                         "each back")
    (tokens,) = inverses
    pattern = parsed.value("containers") or parsed.value("c")
    return ["kubectl", "set", "env", t.ref, *_ns_args(t),
            *([f"--containers={pattern}"] if pattern else []), *tokens]


def _invert_set_resources(parsed: ParsedArgv, t: Target, before: Obj | None,
                          after: Obj | None) -> list[str] | NoInverse:
    if before is None:
        return NoInverse(f"{t.shown()} did not exist before the command")
    chosen = _selected_containers(parsed, before)
    inverses: set[tuple[str, ...]] = set()
    for container in chosen:
        resources = container.get("resources") or {}
        flags: list[str] = []
        for flag, section in (("limits", "limits"), ("requests", "requests")):
            given = parsed.value(flag)
            if not given:
                continue
            old = resources.get(section) or {}
            pairs = []
            for item in given.split(","):
                name = item.partition("=")[0]
                if name not in old:
                    return NoInverse(f"{t.ref} had no {section} {name} before, and kubectl set "
                                     "resources cannot remove one")
                pairs.append(f"{name}={old[name]}")
            flags.append(f"--{flag}={','.join(pairs)}")
        inverses.add(tuple(flags))
    inverses.discard(())
    if not inverses:
        return NoInverse(f"the command changed no resources of {t.ref}")
    if len(inverses) > 1:
        return NoInverse("the containers had different resources before; one set resources "
                         "cannot put each back")
    (flags,) = inverses
    pattern = parsed.value("containers") or parsed.value("c")
    return ["kubectl", "set", "resources", t.ref, *_ns_args(t),
            *([f"--containers={pattern}"] if pattern else []), *flags]


def _created_target(parsed: ParsedArgv) -> Target | NoInverse:
    """`create -f FILE` (one object) or `create KIND NAME` (`create deployment`, `create job`...)."""
    if "filename" in parsed.flags or "kustomize" in parsed.flags:
        return _manifest_target(parsed)
    if parsed.kind == "namespace":
        return NoInverse("rag-k8s never deletes a namespace, so creating one cannot be undone "
                         "through it")
    return _named(parsed)


def _exposed_target(parsed: ParsedArgv) -> Target | NoInverse:
    named = _named(parsed)
    if isinstance(named, NoInverse):
        return named
    return Target("service", parsed.value("name") or named.name, named.namespace)


def _run_target(parsed: ParsedArgv) -> Target | NoInverse:
    pod = parsed.name or (parsed.positional[0] if parsed.positional else "NAME")
    ns = f" -n {parsed.namespace}" if parsed.namespace else ""
    return NoInverse(f"rag-k8s never deletes a pod (CONTRACT §6.1), so a pod it ran is not "
                     f"removed through it: run `kubectl delete pod {pod}{ns}` yourself")


def _merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `new` back into `old`."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return old
    out: dict[str, Any] = {}
    for key in set(old) | set(new):
        if key not in old:
            out[key] = None
        elif key not in new or old[key] != new[key]:
            out[key] = _merge_patch(old[key], new.get(key)) if key in new else old[key]
    return out


def _invert_patch(parsed: ParsedArgv, t: Target, before: Obj | None,
                  after: Obj | None) -> list[str] | NoInverse:
    if before is None or after is None:
        return NoInverse(f"{t.shown()} did not exist before and after the command")
    old, new = state_of(before), state_of(after)
    if old == new:
        return NoInverse(f"the patch changed nothing in {t.ref}")
    if _redacted(old):
        return NoInverse(f"{t.ref} held values that look like credentials, which are never stored")
    patch = json.dumps(_merge_patch(old, new), sort_keys=True, separators=(",", ":"))
    return ["kubectl", "patch", t.ref, *_ns_args(t), "--type=merge", f"--patch={patch}"]


STRATEGIES: dict[str, Strategy] = {
    "scale": Strategy(_named, _invert_scale),
    "set image": Strategy(_named, _invert_set_image),
    "rollout restart": Strategy(_named, _invert_rollout),
    "rollout undo": Strategy(_named, _invert_rollout),
    "autoscale": Strategy(_autoscale_target, _invert_created),
    "cordon": Strategy(_named, _node_flag(True)),
    "uncordon": Strategy(_named, _node_flag(False)),
    "drain": Strategy(_no_drain, _invert_created),  # _no_drain answers first: never inverted
    "delete": Strategy(_target_of, _invert_delete),
    "create": Strategy(_created_target, _invert_created),
    "apply": Strategy(_manifest_target, _invert_apply),
    # The changing intents vocab adds (CONTRACT §3): one entry each.
    "label": Strategy(_object_of, _metadata_map("labels", "label")),
    "annotate": Strategy(_object_of, _metadata_map("annotations", "annotate")),
    "taint": Strategy(_object_of, _invert_taint),
    "rollout pause": Strategy(_named, _paused(True)),
    "rollout resume": Strategy(_named, _paused(False)),
    "set env": Strategy(_named, _invert_set_env),
    "set resources": Strategy(_named, _invert_set_resources),
    "expose": Strategy(_exposed_target, _invert_created),
    "run": Strategy(_run_target, _invert_created),  # _run_target answers first: never inverted
    "patch": Strategy(_named, _invert_patch),
}


def strategy_of(verb: str) -> Strategy | None:
    """The table entry of a kubectl verb; every `create KIND` shares `create`'s."""
    if verb in STRATEGIES:
        return STRATEGIES[verb]
    if verb.split()[0] == "create":
        return STRATEGIES["create"]
    return None


# --- capture and finish -----------------------------------------------------------------------


def capture(argv: list[str], *, settings: Settings, rules: Policy, timeout: float) -> Capture:
    """Read what `argv` will change, just before it runs (one read-only kubectl call)."""
    at = _now()
    try:
        parsed = parse_argv(argv)
    except ArgvError as e:
        return Capture(None, None, False, at, f"the command could not be analysed: {e}")
    strategy = strategy_of(parsed.verb)
    if strategy is None:
        return Capture(None, None, False, at, f"rag-k8s knows no inverse of kubectl {parsed.verb}")
    target = strategy.target(parsed)
    if isinstance(target, NoInverse):
        return Capture(None, None, False, at, target.reason)
    try:
        found, obj = read(target, settings=settings, rules=rules, timeout=timeout)
    except UndoRefused as e:
        return Capture(target, None, False, at, f"the state before could not be captured: {e}")
    return Capture(target, obj, found, at)


def undo_dir(settings: Settings) -> Path:
    return Path(settings.home) / UNDO_DIR


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _dump(state: Obj | None) -> str:
    return yaml.safe_dump(state, sort_keys=True, allow_unicode=True) if state is not None \
        else "null\n"


def finish(op_id: str, argv: list[str], cap: Capture, *, status: str, settings: Settings,
           rules: Policy, timeout: float) -> dict[str, Any]:
    """The audit line's `undo` after the command ran: the inverse argv, or why there is none.

    Reads the object once more, stores both states under `$RAG_K8S_HOME/undo/`."""
    if status != "executed":
        return {"none": f"the command did not complete ({status}), so what it changed is unknown"}
    if cap.none is not None or cap.target is None:
        return {"none": cap.none or "nothing was captured"}
    try:
        _, after = read(cap.target, settings=settings, rules=rules, timeout=timeout)
    except UndoRefused as e:
        return {"none": f"the state after could not be read: {e}"}
    parsed = parse_argv(argv)
    strategy = strategy_of(parsed.verb)
    assert strategy is not None  # capture found it
    inverse = strategy.invert(parsed, cap.target, cap.before, after)
    if isinstance(inverse, NoInverse):
        return {"none": inverse.reason}
    before_state, after_state = state_of(cap.before), state_of(after)
    folder = undo_dir(settings)
    manifest = folder / f"{op_id}.yaml"
    _write_private(manifest, _dump(before_state))
    _write_private(folder / f"{op_id}.after.yaml", _dump(after_state))
    return {
        "argv": [str(manifest) if a == "{manifest}" else a for a in inverse],
        "captured_at": cap.captured_at,
        "before_digest": digest(before_state),
        "after_digest": digest(after_state),
    }


# --- undoing ----------------------------------------------------------------------------------

_OP_ID = re.compile(r"[0-9a-f]{8}[-0-9a-f]{0,28}")


def _find_entry(log: Path, op_id: str) -> dict[str, Any]:
    """The audit line of `op_id` (a unique prefix will do); it must have changed something."""
    matches: dict[str, dict[str, Any]] = {}
    for entry in audit.iter_entries(log):
        oid = str(entry.get("operation_id") or "")
        if oid.startswith(op_id):
            matches[oid] = entry
    if not matches:
        raise InvalidRequest("params.operation_id", f"no operation {op_id} is in the audit log {log}")
    if len(matches) > 1:
        raise InvalidRequest("params.operation_id",
                             f"{op_id} is the start of {len(matches)} operation ids; give more of it")
    (oid, entry), = matches.items()
    if entry.get("exit_code") is None:
        raise UndoRefused(f"operation {oid} ran nothing ({entry.get('status')}), so there is "
                          "nothing to undo")
    if entry.get("dry_run"):
        raise UndoRefused(f"operation {oid} was a dry run: it changed nothing, so there is "
                          "nothing to undo")
    return entry


def _undone_by(log: Path, op_id: str) -> str | None:
    """The executed undo of `op_id` that has not itself been undone, if any."""
    undoers = [e for e in audit.iter_entries(log) if e.get("undoes") == op_id
               and e.get("status") == "executed"]
    for undoer in reversed(undoers):
        uid = str(undoer.get("operation_id"))
        if _undone_by(log, uid) is None:
            return uid
    return None


def _load_state(path: Path, expected: str, what: str) -> Obj | None:
    try:
        state = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UndoRefused(f"the saved {what} state {path} cannot be read ({e})") from None
    if digest(state) != expected:
        raise UndoRefused(f"the saved {what} state {path} was changed: it no longer matches the "
                          "digest in the audit log")
    return state


def plan_undo(request: Request, *, settings: Settings, rules: Policy,
              check_drift: bool = True) -> tuple[Plan, UndoContext]:
    """The plan that undoes `params.operation_id`; raises InvalidRequest or UndoRefused.

    `check_drift=False` (for `plan()`, which never runs kubectl) skips re-reading the object; the
    run re-reads it."""
    from .planner import Plan

    extra = [k for k in ("resource", "namespace", "name", "query") if getattr(request, k)]
    if extra:
        raise InvalidRequest(extra[0], "an undo takes only params.operation_id")
    unknown = sorted(set(request.params) - {"operation_id"})
    if unknown:
        raise InvalidRequest(f"params.{unknown[0]}", "an undo takes only params.operation_id")
    op_id = request.params.get("operation_id")
    if not isinstance(op_id, str) or not _OP_ID.fullmatch(op_id):
        raise InvalidRequest("params.operation_id",
                             "give the operation_id of the operation to undo (at least 8 hex digits)")
    log = settings.audit_log
    report = audit.verify(log)
    if not report.ok:
        raise UndoRefused(f"the audit log does not verify ({report.problem}); undo uses only a "
                          "log whose hash chain is intact: run `rag-k8s audit verify`")
    entry = _find_entry(log, op_id)
    op_id = str(entry["operation_id"])
    record = entry.get("undo")
    if not isinstance(record, dict):
        raise UndoRefused(f"operation {op_id} recorded no undo (it changed nothing, or it ran "
                          "before rag-k8s recorded undos)")
    if "none" in record:
        raise UndoRefused(f"operation {op_id} cannot be undone: {record['none']}")
    argv = record.get("argv")
    original = entry.get("argv")
    if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)
            and isinstance(original, list)):
        raise UndoRefused(f"the audit line of operation {op_id} has no usable undo argv")
    try:
        parsed = parse_argv([str(a) for a in original])
        target = strategy_of(parsed.verb).target(parsed)  # type: ignore[union-attr]
    except (ArgvError, AttributeError):
        raise UndoRefused(f"the command of operation {op_id} names no object to undo") from None
    if isinstance(target, NoInverse):
        raise UndoRefused(target.reason)
    folder = undo_dir(settings)
    before = _load_state(folder / f"{op_id}.yaml", str(record.get("before_digest")), "before")
    after = _load_state(folder / f"{op_id}.after.yaml", str(record.get("after_digest")), "after")
    now = state_of(read(target, settings=settings, rules=rules, timeout=request.timeout)[1]) \
        if check_drift else after
    if now != after:
        if now == before:
            by = _undone_by(log, op_id)
            raise UndoRefused(f"nothing to undo: {target.shown()} is already as it was before "
                              f"operation {op_id}" + (f" (operation {by} undid it)" if by else ""))
        moved = differences(after, now)
        raise UndoRefused(f"{target.shown()} changed since operation {op_id}, so undoing it "
                          "could overwrite someone else's change: " + "; ".join(moved[:5])
                          + ("; ..." if len(moved) > 5 else ""))
    plan_ = Plan(card_id=None, argv=argv, risk_level="medium", planner="undo",
                 rationale=f"Undoes operation {op_id} ({entry.get('command')}), from the state "
                           f"captured at {record.get('captured_at')}."
                           + ("" if check_drift else " The object is re-checked when it runs."),
                 slots={"operation_id": op_id})
    return plan_, UndoContext(op_id, target)
