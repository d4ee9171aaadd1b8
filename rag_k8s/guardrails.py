"""Guardrails (CONTRACT §6): small named checks on the final argv, whoever planned it.

Each guardrail takes a `Subject` and returns the `Finding`s that refuse the command (an empty list
when it has nothing to say). They are registered, in order, in `GUARDRAILS`; `policy.validate` runs
them all, first on the raw argv (`parsed` is None), then on the parsed argv. The org allow-lists
come after them, in `policy.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .kubectl_argv import ParsedArgv
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
# Verbs that run code, forward traffic, read files or write objects outside the command cards.
DENIED_VERBS = frozenset({
    "exec", "cp", "proxy", "port-forward", "apply", "edit", "patch", "replace", "run", "attach",
    "debug", "plugin", "config", "create", "expose", "label", "annotate", "taint", "certificate",
    "cluster-info", "kustomize", "diff", "alpha",
})
# Everything a kubectl argument made from card templates and checked slots needs; no quotes,
# spaces, `;|&$<>()`, backslashes or non-ASCII look-alikes.
_SAFE_CHARS = re.compile(r"[A-Za-z0-9._:/=,@%+*!{}\[\]-]*")
MAX_ARG_LENGTH = 1024
_INT_FLAGS = frozenset({"replicas", "min", "max", "to-revision", "revision", "tail",
                        "current-replicas", "limit-bytes"})
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
    """§6.5: verbs that run code, forward ports, read files or write arbitrary objects."""
    parsed = subject.parsed
    if parsed is None:
        return []
    word = parsed.verb.split()[0]
    if word in DENIED_VERBS:
        return [Finding("no_denied_verbs", f"kubectl {word} is refused: it is not on any allow-list")]
    return []


@guardrail
def no_dangerous_flags(subject: Subject) -> list[Finding]:
    """§6.5: flags that skip graceful shutdown or safety checks, or act on files."""
    parsed = subject.parsed
    if parsed is None:
        return []
    name = "no_dangerous_flags"
    findings = []
    if parsed.is_true("force"):
        findings.append(Finding(name, "--force is refused: it skips graceful deletion and safety "
                                      "checks"))
    grace = parsed.value("grace-period")
    if grace is not None and grace.lstrip("-").isdigit() and int(grace) == 0:
        findings.append(Finding(name, "--grace-period=0 is refused: it kills pods without a "
                                      "graceful shutdown"))
    if parsed.is_true("disable-eviction"):
        findings.append(Finding(name, "--disable-eviction is refused: it bypasses "
                                      "PodDisruptionBudgets"))
    if "raw" in parsed.flags:
        findings.append(Finding(name, "--raw is refused: it sends a raw API request that no "
                                      "allow-list can judge"))
    for flag in ("filename", "kustomize", "overrides"):
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
    if target is not None:
        kind, _, obj = target.partition("/")
        if normalize_resource(kind) is None or not is_dns1123_subdomain(obj):
            findings.append(Finding(name, f"--for={_show(target)} is not kind/name"))
    if parsed.trailing:
        findings.append(Finding(name, "arguments after `--` are refused"))
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
    if parsed.known_verb:
        has_selector = "selector" in parsed.flags or "field-selector" in parsed.flags
        if not parsed.names and not has_selector and not parsed.is_true("all"):
            what = parsed.kind or "object"
            findings.append(Finding(
                name, f"kubectl {parsed.verb} must name the {what} it changes; without a name it "
                      f"acts on every {what} in reach"
            ))
        if len(parsed.names) > 1:
            findings.append(Finding(
                name, f"kubectl {parsed.verb} names {len(parsed.names)} objects; a command that "
                      "changes the cluster may name only one"
            ))
    return findings


@guardrail
def namespace_required(subject: Subject) -> list[Finding]:
    """§6.4: a namespaced resource's command carries `-n <namespace>`, and only that one."""
    parsed = subject.parsed
    if parsed is None or not parsed.known_verb or parsed.kind in CLUSTER_SCOPED:
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
