"""Guardrails (CONTRACT §6): small named checks on the final argv, whoever planned it.

Each guardrail takes a `Subject` and returns the `Finding`s that refuse the command (an empty list
when it has nothing to say). They are registered, in order, in `GUARDRAILS`; `policy.validate` runs
them all, first on the raw argv (`parsed` is None), then on the parsed argv. The org allow-lists
come after them, in `policy.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .kubectl_argv import ParsedArgv
from .verbs import OBJECT_FREE_VERBS, VERBS, never_run_reason
from .vocab import CLUSTER_SCOPED, is_dns1123_label, is_dns1123_subdomain, normalize_resource


@dataclass(frozen=True)
class Finding:
    guardrail: str  # the function's name, for logs and tests
    reason: str  # plain words, shown to the user
    suggestion: str | None = None  # a safer command, when there is one


@dataclass(frozen=True)
class Subject:
    argv: list[str]
    parsed: ParsedArgv | None  # None on the first, raw pass
    forbidden_flags: frozenset[str] = frozenset()  # long names from rbac-allowlist.yaml
    unsafe_drain: bool = False  # rbac-allowlist.yaml unsafe_drain
    run_command_namespaces: frozenset[str] = frozenset()  # rbac-allowlist.yaml


Guardrail = Callable[[Subject], list[Finding]]
GUARDRAILS: list[Guardrail] = []


def guardrail(fn: Guardrail) -> Guardrail:
    """Register `fn` in GUARDRAILS (in definition order) and keep its name usable."""
    GUARDRAILS.append(fn)
    return fn


# CONTRACT §6.3: refused whatever the policy file says (long names; `-s` is `--server`).
CONTRACT_FORBIDDEN_FLAGS = frozenset({
    "kubeconfig", "context", "cluster", "server", "token", "as", "as-group", "as-uid", "user",
    "username", "password", "insecure-skip-tls-verify", "certificate-authority", "client-key",
    "client-certificate",
})
# Everything a kubectl argument made from card templates and checked slots needs; no quotes,
# spaces, `;|&$<>()`, backslashes or non-ASCII look-alikes.
_SAFE_CHARS = re.compile(r"[A-Za-z0-9._:/=,@%+*!{}\[\]-]*")
MAX_ARG_LENGTH = 1024
_INT_FLAGS = frozenset({"replicas", "min", "max", "to-revision", "revision", "tail",
                        "current-replicas", "limit-bytes", "port", "target-port", "grace-period",
                        "max-depth"})
# Values of the newer flags (CONTRACT §3's new intents), each bounded and free of shell syntax.
_LABEL_KEY = r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_ANNOTATION_VALUE = r"[A-Za-z0-9._:/,@%+=-]{0,256}"
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
ENV_VALUE = r"[A-Za-z0-9._:/,@%+=-]{0,256}"
# Add `key[=value]:Effect`; remove `key:Effect-` or `key-` (kubectl takes no value on removal).
_EFFECT = "(NoSchedule|PreferNoSchedule|NoExecute)"
_TAINT = re.compile(rf"{_LABEL_KEY}(={_LABEL_VALUE})?:{_EFFECT}|{_LABEL_KEY}(:{_EFFECT})?-")
_QUANTITY = r"([1-9][0-9]{0,5}|0)(\.[0-9]{1,3})?(m|Ki|Mi|Gi|Ti|k|M|G|T)?"
_RESOURCE_LIST = re.compile(rf"(cpu|memory|ephemeral-storage)={_QUANTITY}"
                            rf"(,(cpu|memory|ephemeral-storage)={_QUANTITY})*")
_SORT_BY = re.compile(r"(\{)?\.[A-Za-z0-9_.\[\]]{1,200}(\})?|cpu|memory")
# Empty matches everything: no_bulk_mutation judges that on changing commands.
_FIELD_SELECTOR = re.compile(r"([a-zA-Z.]{1,64}(=|==|!=)[A-Za-z0-9._:-]{0,128}"
                             r"(,[a-zA-Z.]{1,64}(=|==|!=)[A-Za-z0-9._:-]{0,128}){0,7})?")
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                      r"(Z|[+-][0-9]{2}:[0-9]{2})")
_WAIT_FOR = re.compile(r"delete|condition=[A-Za-z]{1,63}(=(True|False|true|false|Unknown))?"
                       r"|jsonpath=\{[A-Za-z0-9_.\[\]]{1,200}\}=[A-Za-z0-9._-]{1,63}"
                       r"|create")
_DURATION = re.compile(r"[1-9][0-9]{0,4}(s|m)")
_TCP = re.compile(r"[1-9][0-9]{0,4}(:[1-9][0-9]{0,4})?")
_FROM_OBJECT = re.compile(r"cronjob/[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# The object changes a `kubectl patch` may carry: (kind set, the fields a card names). A patch
# is judged by its JSON, which must be exactly one of these shapes with plain values.
PATCH_TYPES = frozenset({"strategic", "merge"})
MAX_NAMES = {"cordon": 20, "uncordon": 20}  # changing verbs that may name several objects
_CAN_I_VERB = re.compile(r"[a-z]+|\*")
_SINCE = re.compile(r"[1-9][0-9]{0,5}[smh]")
_CPU = re.compile(r"[1-9][0-9]{0,3}%|[1-9][0-9]{0,5}m?")
# ReplicaSet hashes and pod suffixes use this alphabet (k8s.io/apimachinery rand.SafeEncodeString).
_HASH = "[bcdfghjklmnpqrstvwxz2456789]"
_DEPLOYMENT_POD = re.compile(rf"(?P<owner>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-{_HASH}{{5,10}}-{_HASH}{{5}}")
_STATEFULSET_POD = re.compile(r"(?P<owner>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(0|[1-9][0-9]{0,4})")


def _show(token: str) -> str:
    text = repr(token)
    return text if len(text) <= 40 else text[:37] + "..."


@guardrail
def argv_shape(subject: Subject) -> list[Finding]:
    """§6.5: only the kubectl binary, as a list of plain arguments (no shell syntax, no controls)."""
    if subject.parsed is not None:
        return []  # checked on the raw pass
    argv = subject.argv
    name = "argv_shape"
    if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(t, str) for t in argv):
        return [Finding(name, "the command must be a non-empty list of strings")]
    findings = []
    if argv[0] != "kubectl":
        findings.append(Finding(
            name, f"only the kubectl binary may run; the command starts with {_show(argv[0])}"
        ))
    for i, token in enumerate(argv[1:], start=1):
        patch = _patch_text(argv, i)
        if patch is not None and not any(ord(c) < 32 or ord(c) == 127 for c in token):
            problem = _patch_json_problem(patch)
            if problem:
                findings.append(Finding(name, f"argument {i}: {problem}"))
            continue
        if not token:
            findings.append(Finding(name, f"argument {i} is empty"))
        elif len(token) > MAX_ARG_LENGTH:
            findings.append(Finding(name, f"argument {i} is longer than {MAX_ARG_LENGTH} characters"))
        elif any(ord(c) < 32 or ord(c) == 127 for c in token):
            findings.append(Finding(
                name, f"argument {i} ({_show(token)}) contains a control character"
            ))
        elif not _SAFE_CHARS.fullmatch(token):
            bad = next(c for c in token if not _SAFE_CHARS.fullmatch(c))
            findings.append(Finding(
                name, f"argument {i} ({_show(token)}) contains {bad!r}, "
                "which no kubectl argument here needs"
            ))
    return findings


def _patch_text(argv: list[str], i: int) -> str | None:
    """The JSON text of argument i when it is a `kubectl patch` body (`-p X`, `--patch=X`)."""
    token = argv[i]
    if not (len(argv) > 1 and "patch" in argv[1:3]):
        return None
    for prefix in ("--patch=", "-p="):
        if token.startswith(prefix):
            return token[len(prefix):]
    if argv[i - 1] in ("-p", "--patch") and token.startswith("{"):
        return token
    return None


def _patch_json_problem(text: str) -> str | None:
    """Why a patch body is not plain JSON of safe scalars (None when it is)."""
    if len(text) > MAX_ARG_LENGTH:
        return f"the patch is longer than {MAX_ARG_LENGTH} characters"
    try:
        data = json.loads(text)
    except ValueError:
        return "the patch is not valid JSON"

    def bad(node: Any) -> bool:
        if isinstance(node, dict):
            return any(not isinstance(k, str) or not _SAFE_CHARS.fullmatch(k) or bad(v)
                       for k, v in node.items())
        if isinstance(node, list):
            return any(bad(v) for v in node)
        if isinstance(node, str):
            return not _SAFE_CHARS.fullmatch(node)
        return not (node is None or isinstance(node, (int, bool)))
    if not isinstance(data, dict) or bad(data):
        return "the patch must be a JSON object of plain names and values"
    return None


@guardrail
def no_credential_flags(subject: Subject) -> list[Finding]:
    """§6.3: no flag that points kubectl at other credentials, another identity or cluster."""
    forbidden = CONTRACT_FORBIDDEN_FLAGS | subject.forbidden_flags
    found: list[str] = []
    if subject.parsed is None:
        # Raw pass: the long forms anywhere, even where the parser would not look (after `--`).
        for token in subject.argv if isinstance(subject.argv, (list, tuple)) else []:
            if isinstance(token, str) and token.startswith("--"):
                flag = token[2:].partition("=")[0]
                if flag in forbidden and flag not in found:
                    found.append(flag)
    else:
        found = [f for f in subject.parsed.flags if f in forbidden]
    return [
        Finding("no_credential_flags", (
            f"--{flag} is refused: it would point kubectl at other credentials, "
            "another identity or another cluster"
            if flag in CONTRACT_FORBIDDEN_FLAGS else
            f"--{flag} is refused by the org policy (rbac-allowlist.yaml forbidden_flags)"
        ))
        for flag in found
    ]


@guardrail
def no_denied_verbs(subject: Subject) -> list[Finding]:
    """§3: verbs rag-k8s never runs (verbs.NEVER_RUN) and verbs the verb table does not know."""
    parsed = subject.parsed
    if parsed is None:
        return []
    reason = never_run_reason(parsed.verb)
    if reason is None and not parsed.known_verb:
        reason = f"kubectl {parsed.verb} is refused: it is not a verb rag-k8s runs"
    return [Finding("no_denied_verbs", reason)] if reason else []


@guardrail
def no_dangerous_flags(subject: Subject) -> list[Finding]:
    """§6.5: flags that skip graceful shutdown or safety checks, or act on files."""
    parsed = subject.parsed
    if parsed is None:
        return []
    name = "no_dangerous_flags"
    findings = []
    # drain --force/--disable-eviction/--grace-period=0: high risk, only where the org allows
    # unsafe drains (rbac-allowlist.yaml unsafe_drain).
    drain_ok = parsed.verb == "drain" and subject.unsafe_drain
    if drain_ok:
        pass
    elif parsed.verb == "drain" and (parsed.is_true("force") or parsed.is_true("disable-eviction")
                                     or parsed.value("grace-period") == "0"):
        findings.append(Finding(name, "drain with --force, --disable-eviction or --grace-period=0 "
                                      "is refused: the org policy does not allow unsafe drains "
                                      "(rbac-allowlist.yaml unsafe_drain), as the node may run "
                                      "prod pods"))
    elif parsed.is_true("force"):
        findings.append(Finding(name, "--force is refused: it skips graceful deletion and safety "
                                      "checks"))
    grace = parsed.value("grace-period")
    if parsed.verb == "drain":
        pass
    elif grace is not None and grace.lstrip("-").isdigit() and int(grace) == 0:
        findings.append(Finding(name, "--grace-period=0 is refused: it kills pods without a "
                                      "graceful shutdown"))
    if parsed.is_true("disable-eviction") and parsed.verb != "drain":
        findings.append(Finding(name, "--disable-eviction is refused: it bypasses "
                                      "PodDisruptionBudgets"))
    if "raw" in parsed.flags:
        findings.append(Finding(name, "--raw is refused: it sends a raw API request that no "
                                      "allow-list can judge"))
    for flag in ("filename", "kustomize", "overrides", "patch-file", "from-file", "from-env-file"):
        if flag in parsed.flags:
            findings.append(Finding(
                name, f"--{flag} is refused: commands act only on named objects, never on files "
                      "or inline objects"
            ))
    output = parsed.value("output") or ""
    if output.partition("=")[0].endswith("file"):
        findings.append(Finding(name, f"-o {output.partition('=')[0]} is refused: it reads a "
                                      "local file"))
    return findings


@guardrail
def well_formed_values(subject: Subject) -> list[Finding]:
    """DNS-1123 and type checks of every value that reaches the argv."""
    parsed = subject.parsed
    if parsed is None or not parsed.known_verb:
        return []
    name = "well_formed_values"
    findings = []
    if parsed.namespace is not None and not is_dns1123_label(parsed.namespace):
        findings.append(Finding(name, f"namespace {_show(parsed.namespace)} is not a DNS-1123 "
                                      "label"))
    for obj in parsed.names:
        if not is_dns1123_subdomain(obj):
            findings.append(Finding(name, f"name {_show(obj)} is not a valid Kubernetes name"))
    for flag in sorted(_INT_FLAGS & set(parsed.flags)):
        for value in parsed.flags[flag]:
            if not re.fullmatch(r"0|[1-9][0-9]{0,6}", value):
                findings.append(Finding(name, f"--{flag}={_show(value)} is not a whole number"))
    if parsed.verb == "auth can-i" and parsed.extra and not _CAN_I_VERB.fullmatch(parsed.extra[0]):
        findings.append(Finding(name, f"can-i verb {_show(parsed.extra[0])} is not a verb"))
    if parsed.verb == "set image":
        findings += _image_pairs(parsed)
    for flag, pattern in (("container", None), ("since", _SINCE), ("cpu", _CPU)):
        value = parsed.value(flag)
        ok = is_dns1123_label(value) if pattern is None else bool(pattern.fullmatch(value or ""))
        if value is not None and not ok:
            findings.append(Finding(name, f"--{flag}={_show(value)} is not well-formed"))
    target = parsed.value("for")
    if target is not None and parsed.verb == "events":
        kind, _, obj = target.partition("/")
        if normalize_resource(kind) is None or not is_dns1123_subdomain(obj):
            findings.append(Finding(name, f"--for={_show(target)} is not kind/name"))
    findings += _new_flag_values(parsed)
    if parsed.trailing and not _run_command_allowed(subject):
        findings.append(Finding(name, "arguments after `--` are refused"
                                + (" (a command override for kubectl run is allowed only in "
                                   "the namespaces of rbac-allowlist.yaml run_command_namespaces)"
                                   if parsed.verb == "run" else "")))
    return findings


def _run_command_allowed(subject: Subject) -> bool:
    parsed = subject.parsed
    return (parsed is not None and parsed.verb == "run" and parsed.namespace is not None
            and parsed.namespace in subject.run_command_namespaces
            and all(_SAFE_CHARS.fullmatch(t) for t in parsed.trailing))


# flag -> the pattern its every value must match (the flags of the new intents' cards).
_FLAG_PATTERNS: dict[str, re.Pattern[str]] = {
    "requests": _RESOURCE_LIST, "limits": _RESOURCE_LIST, "sort-by": _SORT_BY,
    "field-selector": _FIELD_SELECTOR, "since-time": _RFC3339, "tcp": _TCP,
    "pod-selector": re.compile(r"[-A-Za-z0-9_./=!,]{1,256}"),
    "from-literal": re.compile(rf"[-._A-Za-z0-9]{{1,253}}={ENV_VALUE}"),
    "env": re.compile(rf"{ENV_NAME}={ENV_VALUE}"),
    "type": re.compile(r"[A-Za-z]{1,32}"),
    "restart": re.compile(r"Never|OnFailure|Always"),
    "image-pull-policy": re.compile(r"Never|IfNotPresent|Always"),
}


def _new_flag_values(parsed: ParsedArgv) -> list[Finding]:
    name = "well_formed_values"
    findings = []
    for flag, pattern in _FLAG_PATTERNS.items():
        for value in parsed.flags.get(flag, ()):
            if not pattern.fullmatch(value):
                findings.append(Finding(name, f"--{flag}={_show(value)} is not well-formed"))
    if parsed.verb == "wait":
        target = parsed.value("for")
        if target is None or not _WAIT_FOR.fullmatch(target):
            findings.append(Finding(name, "kubectl wait needs --for=condition=NAME, "
                                          "--for=delete or --for=jsonpath={...}=VALUE"))
        timeout = parsed.value("timeout")
        if timeout is None or not _DURATION.fullmatch(timeout) or _seconds(timeout) > 300:
            findings.append(Finding(name, "kubectl wait needs --timeout of at most 300s (it is "
                                          "bounded by the request's timeout)"))
    if parsed.verb == "set resources" and not ("requests" in parsed.flags
                                                or "limits" in parsed.flags):
        findings.append(Finding(name, "kubectl set resources needs --requests or --limits"))
    from_ = parsed.value("from")
    if parsed.verb == "create job" and from_ is not None and not _FROM_OBJECT.fullmatch(from_):
        findings.append(Finding(name, f"--from={_show(from_)} is not cronjob/NAME"))
    if parsed.verb in ("create deployment", "create job", "run"):
        findings += _image_flag(parsed)
    if parsed.verb in ("label", "annotate", "set env"):
        findings += _pairs(parsed)
    if parsed.verb == "taint":
        if not parsed.extra:
            findings.append(Finding(name, "kubectl taint needs a taint like key=value:NoSchedule"))
        for taint in parsed.extra:
            if not _TAINT.fullmatch(taint):
                findings.append(Finding(name, f"{_show(taint)} is not a taint "
                                              "(key[=value]:Effect, key:Effect- or key-)"))
    if parsed.verb == "explain" and parsed.resource is not None and not re.fullmatch(
        r"[a-z][a-z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*){0,8}", parsed.resource
    ):
        findings.append(Finding(name, f"{_show(parsed.resource)} is not a resource field path"))
    return findings


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * (60 if duration.endswith("m") else 1)


def _image_flag(parsed: ParsedArgv) -> list[Finding]:
    from .request import request_schema

    image_re = request_schema()["properties"]["params"]["properties"]["image"]["pattern"]
    return [
        Finding("well_formed_values", f"--image={_show(image)} is not an image reference")
        for image in parsed.flags.get("image", ())
        if not re.fullmatch(image_re.removeprefix("^").removesuffix("$"), image)
    ]


def _pairs(parsed: ParsedArgv) -> list[Finding]:
    """label/annotate `key=value`/`key-`, set env `NAME=value`/`NAME-`."""
    if parsed.verb == "set env":
        key_re, value_re = ENV_NAME, ENV_VALUE
    elif parsed.verb == "label":
        key_re, value_re = _LABEL_KEY, _LABEL_VALUE
    else:
        key_re, value_re = _LABEL_KEY, _ANNOTATION_VALUE
    findings = []
    if not parsed.extra and not parsed.flags.get("env"):
        findings.append(Finding("well_formed_values",
                                f"kubectl {parsed.verb} needs key=value or key- arguments"))
    for pair in parsed.extra:
        key, eq, value = pair.partition("=")
        ok = (re.fullmatch(key_re, key) and re.fullmatch(value_re, value)) if eq else \
            re.fullmatch(key_re, pair[:-1]) and pair.endswith("-")
        if not ok:
            findings.append(Finding("well_formed_values",
                                    f"{_show(pair)} is not key=value or key-"))
    return findings


def _image_pairs(parsed: ParsedArgv) -> list[Finding]:
    from .request import request_schema

    image_re = request_schema()["properties"]["params"]["properties"]["image"]["pattern"]
    findings = []
    if not parsed.extra:
        findings.append(Finding("well_formed_values", "kubectl set image needs container=image"))
    for pair in parsed.extra:
        container, _, image = pair.partition("=")
        if not (container == "*" or is_dns1123_label(container)) or not re.fullmatch(
            image_re.removeprefix("^").removesuffix("$"), image
        ):
            findings.append(Finding("well_formed_values",
                                    f"{_show(pair)} is not container=image"))
    return findings


def restart_suggestion(pod: str, namespace: str | None) -> str:
    """A safer command than deleting `pod`: restart its owner, or find the owner first."""
    ns = namespace or "<namespace>"
    match = _DEPLOYMENT_POD.fullmatch(pod)
    if match:  # <deployment>-<replicaset hash>-<pod suffix>
        return f"kubectl rollout restart deployment/{match['owner']} -n {ns}"
    match = _STATEFULSET_POD.fullmatch(pod)
    if match:  # <statefulset>-<ordinal>
        return f"kubectl rollout restart statefulset/{match['owner']} -n {ns}"
    return f"kubectl describe pod {pod} -n {ns}"


@guardrail
def no_pod_delete(subject: Subject) -> list[Finding]:
    """§6.1: a deleted pod is replaced by its controller; restart the owner instead."""
    parsed = subject.parsed
    if parsed is None or parsed.verb != "delete" or parsed.kind != "pod":
        return []
    pod = parsed.name
    suggestion = restart_suggestion(pod, parsed.namespace) if pod and is_dns1123_subdomain(pod) \
        else None
    if suggestion and suggestion.startswith("kubectl describe"):
        reason = ("deleting a pod is refused: restart the workload that owns it instead "
                  "(`Controlled By` in kubectl describe pod shows the owner)")
    else:
        reason = "deleting a pod is refused: restart the workload that owns it instead"
    return [Finding("no_pod_delete", reason, suggestion)]


# Labels the kubelet and the cloud put on every node (and their values that every node of a
# typical cluster shares): a selector on them alone picks out nothing.
_LABELS_ON_EVERY_NODE = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type", "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
})
_SHARED_VALUES = {"kubernetes.io/os": {"linux"}, "beta.kubernetes.io/os": {"linux"}}


def _term_matches_everything(term: str) -> bool:
    if not term or term.startswith("!") or "!=" in term or " notin " in term:
        return True  # empty or a negation: everything but a few
    key, eq, value = term.partition("==") if "==" in term else term.partition("=")
    key = key.strip()
    if key not in _LABELS_ON_EVERY_NODE:
        return False
    return not eq or value.strip() in _SHARED_VALUES.get(key, set())


def selects_everything(selector: str) -> bool:
    """True for a selector that matches every object (empty), nearly (only negations), or every
    node in practice (only the existence of a label every node carries, `kubernetes.io/os=linux`)."""
    terms = [t.strip() for t in selector.split(",")]
    if not any(terms):
        return True
    return all(_term_matches_everything(t) for t in terms)


@guardrail
def no_bulk_mutation(subject: Subject) -> list[Finding]:
    """§6.2: a changing command acts on one named object, never on everything."""
    parsed = subject.parsed
    if parsed is None or not parsed.mutating:
        return []
    name = "no_bulk_mutation"
    findings = []
    if parsed.verb == "delete" and parsed.kind == "namespace":
        findings.append(Finding(name, "deleting a namespace is never allowed"))
    if parsed.is_true("all"):
        findings.append(Finding(name, "--all is refused on a command that changes the cluster; "
                                      "name one object"))
    if parsed.is_true("all-namespaces"):
        findings.append(Finding(name, "--all-namespaces (-A) is refused on a command that changes "
                                      "the cluster"))
    for flag in ("selector", "field-selector"):
        for value in parsed.flags.get(flag, ()):
            if selects_everything(value):
                findings.append(Finding(
                    name, f"--{flag}={_show(value)} matches everything; name one object"
                ))
    spec = VERBS.get(parsed.verb)
    from_files = spec is not None and spec.manifests and (
        "filename" in parsed.flags or "kustomize" in parsed.flags)
    if parsed.known_verb and not from_files:
        has_selector = "selector" in parsed.flags or "field-selector" in parsed.flags
        if not parsed.names and not has_selector and not parsed.is_true("all"):
            what = parsed.kind or "object"
            findings.append(Finding(
                name, f"kubectl {parsed.verb} must name the {what} it changes; without a name it "
                      f"acts on every {what} in reach"
            ))
        most = MAX_NAMES.get(parsed.verb, 1)
        if len(parsed.names) > most:
            findings.append(Finding(
                name, f"kubectl {parsed.verb} names {len(parsed.names)} objects; a command that "
                      "changes the cluster may name only one" if most == 1 else
                      f"kubectl {parsed.verb} names {len(parsed.names)} objects; at most {most}"
            ))
    return findings


@guardrail
def namespace_required(subject: Subject) -> list[Finding]:
    """§6.4: a namespaced resource's command carries `-n <namespace>`, and only that one."""
    parsed = subject.parsed
    if parsed is None or not parsed.known_verb or parsed.kind in CLUSTER_SCOPED \
            or parsed.verb in OBJECT_FREE_VERBS:
        return []
    findings = []
    what = parsed.kind if parsed.kind not in (None, "*") else "the resource"
    if parsed.namespace is None:
        findings.append(Finding(
            "namespace_required", f"{what} is namespaced: the command must carry -n <namespace>"
        ))
    if parsed.is_true("all-namespaces"):
        findings.append(Finding(
            "namespace_required", "--all-namespaces (-A) reaches namespaces outside the org "
                                  "policy; name one with -n <namespace>"
        ))
    return findings


# `kubectl run` flags that make it interactive, privileged, or leave no trace of what ran.
_RUN_REFUSED = ("stdin", "tty", "attach", "rm", "leave-stdin-open", "privileged", "command",
                "expose", "overrides", "override-type")


@guardrail
def safe_run(subject: Subject) -> list[Finding]:
    """`kubectl run` starts one plain pod: no -i/-t, no --rm, no privileges, an image given."""
    parsed = subject.parsed
    if parsed is None or parsed.verb != "run":
        return []
    findings = [
        Finding("safe_run", f"kubectl run --{flag} is refused: rag-k8s starts plain pods only "
                            "(no interactive session, no --rm, no privileges, no overrides)")
        for flag in _RUN_REFUSED if flag in parsed.flags and parsed.value(flag) != "false"
    ]
    if parsed.value("image") is None:
        findings.append(Finding("safe_run", "kubectl run needs --image"))
    restart = parsed.value("restart")
    if restart not in (None, "Never", "OnFailure"):
        findings.append(Finding("safe_run", "kubectl run makes a pod only: --restart=Never or "
                                            "OnFailure"))
    return findings


@guardrail
def set_env_writes_only(subject: Subject) -> list[Finding]:
    """`kubectl set env` changes variables; --list/--resolve would print values, secrets too."""
    parsed = subject.parsed
    if parsed is None or parsed.verb != "set env":
        return []
    findings = [
        Finding("set_env_writes_only", f"kubectl set env --{flag} is refused: it prints or copies "
                                       "variable values, which may hold secrets")
        for flag in ("list", "resolve", "from", "keys", "prefix") if flag in parsed.flags
        and parsed.value(flag) != "false"
    ]
    return findings


# kind -> (the fields a patch may change, described, and a check of the patch's JSON).
def _replicas_only(d: Any) -> bool:
    return d.keys() == {"spec"} and isinstance(d["spec"], dict) and d["spec"].keys() == {
        "replicas"} and isinstance(d["spec"]["replicas"], int) and not isinstance(
        d["spec"]["replicas"], bool) and 0 <= d["spec"]["replicas"] <= 10000


def _selector_only(d: Any) -> bool:
    sel = d.get("spec", {}).get("selector") if isinstance(d.get("spec"), dict) else None
    return d.keys() == {"spec"} and d["spec"].keys() == {"selector"} and isinstance(sel, dict) \
        and bool(sel) and all(re.fullmatch(_LABEL_KEY, k) and isinstance(v, str)
                              and re.fullmatch(_LABEL_VALUE, v) for k, v in sel.items())


def _quantities(q: Any) -> bool:
    return isinstance(q, dict) and bool(q) and all(
        k in ("cpu", "memory", "ephemeral-storage") and isinstance(v, str)
        and re.fullmatch(_QUANTITY, v) for k, v in q.items())


def _resources_only(d: Any) -> bool:
    try:
        containers = d["spec"]["template"]["spec"]["containers"]
        ok_shape = d.keys() == {"spec"} and d["spec"].keys() == {"template"} and \
            d["spec"]["template"].keys() == {"spec"} and \
            d["spec"]["template"]["spec"].keys() == {"containers"}
    except (KeyError, TypeError, AttributeError):
        return False
    return ok_shape and isinstance(containers, list) and bool(containers) and all(
        isinstance(c, dict) and c.keys() == {"name", "resources"} and is_dns1123_label(c["name"])
        and isinstance(c["resources"], dict) and bool(c["resources"])
        and set(c["resources"]) <= {"requests", "limits"}
        and all(_quantities(v) for v in c["resources"].values())
        for c in containers)


def _storage_only(d: Any) -> bool:
    try:
        req = d["spec"]["resources"]["requests"]
        return d.keys() == {"spec"} and d["spec"].keys() == {"resources"} and \
            d["spec"]["resources"].keys() == {"requests"} and req.keys() == {"storage"} and \
            isinstance(req["storage"], str) and bool(re.fullmatch(_QUANTITY, req["storage"]))
    except (KeyError, TypeError, AttributeError):
        return False


PATCH_FIELDS: dict[str, tuple[tuple[str, Callable[[Any], bool]], ...]] = {
    "service": (("spec.selector", _selector_only),),
    "deployment": (("spec.replicas", _replicas_only),
                   ("container resources", _resources_only)),
    "statefulset": (("spec.replicas", _replicas_only),
                    ("container resources", _resources_only)),
    "replicaset": (("spec.replicas", _replicas_only),),
    "daemonset": (("container resources", _resources_only),),
    "pvc": (("spec.resources.requests.storage", _storage_only),),
}


def patch_field(parsed: ParsedArgv) -> str | None:
    """The field a patch changes (`spec.replicas`, ...), or None when it is not one of
    PATCH_FIELDS for its kind; the policy judges `patch` by it."""
    try:
        data = json.loads(parsed.value("patch") or "")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for field_name, check in PATCH_FIELDS.get(parsed.kind or "", ()):
        if check(data):
            return field_name
    return None


@guardrail
def patch_named_fields(subject: Subject) -> list[Finding]:
    """`kubectl patch`: a strategic or merge patch of one field a card names, never free JSON."""
    parsed = subject.parsed
    if parsed is None or parsed.verb != "patch":
        return []
    name = "patch_named_fields"
    findings = []
    kind_type = parsed.value("type") or "strategic"
    if kind_type not in PATCH_TYPES:
        findings.append(Finding(name, f"--type={_show(kind_type)} is refused: only strategic or "
                                      "merge patches of named fields"))
    if parsed.value("patch") is None:
        findings.append(Finding(name, "kubectl patch needs -p with the patch"))
    elif patch_field(parsed) is None:
        fields = "; ".join(f"{k}: {', '.join(f for f, _ in v)}" for k, v in PATCH_FIELDS.items())
        findings.append(Finding(name, f"this patch changes fields rag-k8s does not patch; a patch "
                                      f"may change only ({fields})"))
    if "subresource" in parsed.flags:
        findings.append(Finding(name, "kubectl patch --subresource is refused"))
    return findings


@guardrail
def server_dry_run_only(subject: Subject) -> list[Finding]:
    """§6.6: only a server-side dry run is an honest preview; client dry runs are refused."""
    parsed = subject.parsed
    if parsed is None:
        return []
    return [
        Finding("server_dry_run_only", f"--dry-run={value} is refused: only --dry-run=server is "
                                       "checked by the API server")
        for value in dict.fromkeys(parsed.flags.get("dry-run", ()))
        if value != "server"
    ]


def executor_findings(argv: list[str]) -> list[Finding]:
    """What the executor refuses on its own, whoever calls it (a side door past `validate`):
    anything but kubectl, the credential flags of §6.3, and deleting a namespace."""
    from .errors import ArgvError
    from .kubectl_argv import parse_argv

    if not argv or argv[0] != "kubectl":
        return [Finding("executor", "only the kubectl binary is run, as an argv list")]
    findings = no_credential_flags(Subject(argv, None))
    try:
        parsed = parse_argv(argv)
    except ArgvError:
        return findings  # the raw checks are all that apply to an argv kubectl may not parse
    findings += [f for f in no_credential_flags(Subject(argv, parsed)) if f not in findings]
    if parsed.verb == "delete" and parsed.kind == "namespace":
        findings.append(Finding("executor", "deleting a namespace is never allowed"))
    return findings
