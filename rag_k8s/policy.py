"""Policy: the org allow-lists (org/*.yaml), the risk table and the guardrails, on the final argv.

`validate` reads only the parsed argv, never what a planner says about it, and fails closed: an
argv it cannot analyse, a missing or malformed policy file, a namespace or kind not on the lists
all mean the command does not run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import yamlsafe
from .errors import ArgvError, PolicyError
from .guardrails import GUARDRAILS, Finding, Subject
from .kubectl_argv import ParsedArgv, parse_argv
from .verbs import NEVER_RUN, OBJECT_FREE_VERBS, POLICY_VERBS, VERBS, never_run_reason
from .vocab import (
    CATEGORIES, CLUSTER_SCOPED, INTENTS, RESOURCES, RISK_ORDER, base_risk, is_dns1123_label,
    max_risk,
)

if TYPE_CHECKING:
    from .cards import Card

NAMESPACES_FILE = "namespaces.yaml"
RBAC_FILE = "rbac-allowlist.yaml"

# kubectl verb -> the intents it serves, the first one deciding its risk (CONTRACT §3-§4), from
# the one verb table (rag_k8s/verbs.py).
VERB_INTENTS: Mapping[str, tuple[str, ...]] = POLICY_VERBS
_KINDS = frozenset(RESOURCES) | {"*"}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    requires_confirmation: bool
    reasons: list[str] = field(default_factory=list)
    suggestion: str | None = None
    risk_level: str = "none"

    def to_dict(self) -> dict[str, Any]:
        """CONTRACT §2's `decision` object."""
        return {
            "allowed": self.allowed,
            "requires_confirmation": self.requires_confirmation,
            "reasons": list(self.reasons),
            "suggestion": self.suggestion,
        }


# --- the two policy files -------------------------------------------------------------------


def _check_kinds(kinds: list[str]) -> list[str]:
    for kind in kinds:
        if kind not in _KINDS:
            raise ValueError(f"{kind!r} is not a kind ({', '.join(RESOURCES)}) or '*'")
    return kinds


class NamespaceRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    allow: dict[str, list[str]] = Field(description="intent -> the kinds it may act on")

    @field_validator("allow")
    @classmethod
    def _intents_and_kinds(cls, allow: dict[str, list[str]]) -> dict[str, list[str]]:
        for intent, kinds in allow.items():
            if intent not in INTENTS:
                raise ValueError(f"{intent!r} is not an intent ({', '.join(INTENTS)})")
            _check_kinds(kinds)
        return allow


class NamespacesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    namespaces: dict[str, NamespaceRule]

    @field_validator("namespaces")
    @classmethod
    def _labels(cls, namespaces: dict[str, NamespaceRule]) -> dict[str, NamespaceRule]:
        for ns in namespaces:
            if not is_dns1123_label(ns):
                raise ValueError(f"{ns!r} is not a DNS-1123 namespace name")
        return namespaces


class SecretsRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_formats: list[Literal["name", "wide"]] = Field(
        description="`kubectl get secret -o` formats that show no secret data"
    )


class RbacFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    verbs: dict[str, list[str]]
    cluster_scoped: dict[str, list[str]]
    secrets: SecretsRule
    forbidden_flags: list[str]
    max_replicas: int = Field(ge=0, le=10000)
    unsafe_drain: bool = Field(
        default=False, description="allow drain --force/--disable-eviction/--grace-period=0 "
        "(high risk, confirmed); off by default: the node may run prod pods")
    run_command_namespaces: list[str] = Field(
        default_factory=list,
        description="namespaces where `kubectl run` may override the command (`-- cmd args`)")

    @field_validator("verbs")
    @classmethod
    def _verbs(cls, verbs: dict[str, list[str]]) -> dict[str, list[str]]:
        for verb, kinds in verbs.items():
            if verb in NEVER_RUN:
                raise ValueError(f"{verb!r} is a verb rag-k8s never runs, whatever the policy "
                                 "says (rag_k8s/verbs.py NEVER_RUN)")
            if verb not in VERB_INTENTS:
                raise ValueError(f"{verb!r} is not a kubectl verb of the verb table "
                                 "(rag_k8s/verbs.py VERBS)")
            _check_kinds(kinds)
        return verbs

    @field_validator("cluster_scoped")
    @classmethod
    def _cluster(cls, rules: dict[str, list[str]]) -> dict[str, list[str]]:
        for kind, verbs in rules.items():
            if kind not in CLUSTER_SCOPED:
                raise ValueError(f"{kind!r} is not a cluster-scoped kind "
                                 f"({', '.join(sorted(CLUSTER_SCOPED))})")
            for verb in verbs:
                if verb not in VERB_INTENTS:
                    raise ValueError(f"{verb!r} is not a kubectl verb the agent knows")
        return rules

    @field_validator("run_command_namespaces")
    @classmethod
    def _run_ns(cls, namespaces: list[str]) -> list[str]:
        for ns in namespaces:
            if not is_dns1123_label(ns):
                raise ValueError(f"{ns!r} is not a DNS-1123 namespace name")
        return namespaces

    @field_validator("forbidden_flags")
    @classmethod
    def _flags(cls, flags: list[str]) -> list[str]:
        for flag in flags:
            if not re.fullmatch(r"--[a-z][-a-z0-9]*", flag):
                raise ValueError(f"{flag!r} is not a long flag like --kubeconfig")
        return flags


@dataclass(frozen=True)
class Policy:
    org_dir: Path
    namespaces: dict[str, dict[str, frozenset[str]]]  # namespace -> intent -> kinds
    verbs: dict[str, frozenset[str]]  # kubectl verb -> kinds (the ceiling)
    cluster_scoped: dict[str, frozenset[str]]  # cluster-scoped kind -> kubectl verbs
    secret_output_formats: frozenset[str]
    forbidden_flags: frozenset[str]  # long names, without dashes
    max_replicas: int
    unsafe_drain: bool = False
    run_command_namespaces: frozenset[str] = frozenset()


def _read(path: Path, model: type[BaseModel]) -> Any:
    if not path.is_file():
        raise PolicyError(
            f"{path}: policy file not found, so nothing may run; restore it or point "
            "RAG_K8S_ORG_DIR at a folder holding namespaces.yaml and rbac-allowlist.yaml"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(f"{path}: cannot be read ({e}), so nothing may run") from None
    try:
        data = yamlsafe.load(text)  # a duplicated key is an error, not a silent override
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise PolicyError(f"{path}: {where}not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: must be a YAML mapping with `version: 1`")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(p for p in err["loc"] if p != "[key]")
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = yamlsafe.line_of(text, loc)
        where = f"line {line}: " if line else ""
        problem = "unknown key" if err["type"] == "extra_forbidden" else \
            err["msg"].removeprefix("Value error, ")
        raise PolicyError(f"{path}: {where}{key}: {problem}") from None


_CACHE: dict[Path, tuple[tuple[tuple[int, int], ...], Policy]] = {}


def load_policy(org_dir: Path) -> Policy:
    """Load and validate `namespaces.yaml` and `rbac-allowlist.yaml` from `org_dir`.

    Raises `PolicyError`, naming the file, the line or key and the problem, when either file is
    missing or malformed. Reloaded only when a file changes (cached by path and mtime).
    """
    org_dir = Path(org_dir).expanduser().resolve()
    files = (org_dir / NAMESPACES_FILE, org_dir / RBAC_FILE)
    try:
        signature = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    except OSError:
        signature = ()
    hit = _CACHE.get(org_dir)
    if signature and hit is not None and hit[0] == signature:
        return hit[1]
    ns_file: NamespacesFile = _read(files[0], NamespacesFile)
    rbac: RbacFile = _read(files[1], RbacFile)
    policy = Policy(
        org_dir=org_dir,
        namespaces={
            ns: {intent: frozenset(kinds) for intent, kinds in rule.allow.items()}
            for ns, rule in ns_file.namespaces.items()
        },
        verbs={verb: frozenset(kinds) for verb, kinds in rbac.verbs.items()},
        cluster_scoped={kind: frozenset(v) for kind, v in rbac.cluster_scoped.items()},
        secret_output_formats=frozenset(rbac.secrets.output_formats),
        forbidden_flags=frozenset(f.removeprefix("--") for f in rbac.forbidden_flags),
        max_replicas=rbac.max_replicas,
        unsafe_drain=rbac.unsafe_drain,
        run_command_namespaces=frozenset(rbac.run_command_namespaces),
    )
    if signature:
        _CACHE[org_dir] = (signature, policy)
    return policy


# --- reading the argv -----------------------------------------------------------------------


def intents_of(parsed: ParsedArgv) -> tuple[str, ...]:
    """The intents a parsed command serves (`get events` is `events`); () for unknown verbs."""
    if parsed.verb == "get" and parsed.kind == "event":
        return ("events", "diagnose")
    return VERB_INTENTS.get(parsed.verb, ())


def risk_of(parsed: ParsedArgv) -> str:
    """CONTRACT §4's risk of the command itself; unknown verbs count as high."""
    intents = intents_of(parsed)
    if not intents:
        return "high"
    replicas = parsed.value("replicas")
    return base_risk(intents[0], int(replicas) if replicas and replicas.isdigit() else None,
                     unsafe_drain=is_unsafe_drain(parsed))


def is_unsafe_drain(parsed: ParsedArgv) -> bool:
    """A drain that can lose pods: --force, --disable-eviction or --grace-period=0 (§4: high)."""
    if parsed.verb != "drain":
        return False
    grace = parsed.value("grace-period")
    return parsed.is_true("force") or parsed.is_true("disable-eviction") or grace == "0"


def is_mutating(argv: list[str]) -> bool:
    """Whether the argv can change the cluster, from its parsed verb; unparseable counts as yes."""
    try:
        return parse_argv(argv).mutating
    except ArgvError:
        return True


# --- the decision ---------------------------------------------------------------------------


def _allow_list(parsed: ParsedArgv, policy: Policy) -> tuple[list[str], str | None]:
    """Reasons the org allow-lists refuse the command ([] when they allow it), and a suggestion."""
    verb, kind, ns = parsed.verb, parsed.kind, parsed.namespace
    if verb not in policy.verbs:
        return [f"kubectl {verb} is not on the RBAC allow-list (org/rbac-allowlist.yaml verbs); "
                "run it yourself if you mean to"], _run_yourself(parsed.argv)
    if verb in OBJECT_FREE_VERBS:
        return [], None  # names no object and no namespace: the verb's listing is the rule
    if kind in CATEGORIES:
        return _category(parsed, policy), None
    if kind is None:
        if parsed.resource is None:
            return [f"kubectl {verb} names no resource kind"], None
        return [f"{parsed.resource!r} is not a resource kind the org policy knows"], None
    reasons: list[str] = []
    suggestion = None
    if kind not in policy.verbs[verb] and "*" not in policy.verbs[verb]:
        reasons.append(f"kubectl {verb} on {kind} is not on the RBAC allow-list")
    if kind == "secret" and verb == "get":
        output = (parsed.value("output") or "").partition("=")[0]
        if (output and output not in policy.secret_output_formats) or "template" in parsed.flags:
            reasons.append(f"reading secret contents is never allowed (-o {output or 'template'})"
                           "; only secret names may be listed")
            suggestion = f"kubectl get secrets -n {ns or '<namespace>'}"
    if kind in CLUSTER_SCOPED:
        if verb not in policy.cluster_scoped.get(kind, frozenset()):
            reasons.append(f"kubectl {verb} on {kind} (cluster-scoped) is not allowed")
    elif ns is not None:
        rules = policy.namespaces.get(ns)
        intents = intents_of(parsed)
        if rules is None:
            reasons.append(f"namespace {ns!r} is not in the org policy: nothing may run there")
        elif not any(kind in rules.get(i, ()) or "*" in rules.get(i, ()) for i in intents):
            reasons.append(f"namespace {ns!r} does not allow {intents[0]} on {kind}")
    reasons += _replica_cap(parsed, policy)
    return reasons, suggestion


def _category(parsed: ParsedArgv, policy: Policy) -> list[str]:
    """`kubectl get all`: allowed only when every kind of the category is (never a mutation)."""
    assert parsed.kind is not None
    if parsed.verb != "get":
        return [f"kubectl {parsed.verb} {parsed.kind} is refused: name one kind"]
    kinds = sorted(CATEGORIES[parsed.kind])
    refused = [k for k in kinds if k not in policy.verbs["get"] and "*" not in policy.verbs["get"]]
    rules = policy.namespaces.get(parsed.namespace or "")
    if rules is None:
        return [f"namespace {parsed.namespace!r} is not in the org policy: nothing may run there"]
    allowed = rules.get("get", frozenset())
    refused += [k for k in kinds if k not in allowed and "*" not in allowed and k not in refused]
    if refused:
        return [f"kubectl get {parsed.kind} lists {', '.join(kinds)}; namespace "
                f"{parsed.namespace!r} does not allow get on {', '.join(refused)}"]
    return []


def _run_yourself(argv: tuple[str, ...] | list[str]) -> str | None:
    """The command, shell-quoted, for the user to run themselves (None if it holds controls)."""
    if not all(isinstance(t, str) for t in argv) or any(
        ord(c) < 32 or ord(c) == 127 for t in argv for c in t
    ):
        return None
    return shlex.join(argv)


def _verb_words(argv: list[str]) -> str | None:
    """The verb an argv names (its first non-flag words), for refusing never-run verbs even when
    the rest cannot be analysed."""
    words = [t for t in argv[1:3] if isinstance(t, str) and t and not t.startswith("-")]
    if not words:
        return None
    two = " ".join(words[:2])
    return two if two in NEVER_RUN or two in VERBS else words[0]


def never_run(argv: list[str], parsed: ParsedArgv | None) -> Decision | None:
    """CONTRACT §3: a verb rag-k8s never runs, or one no table knows: denied, with the command
    for the user to run themselves as the suggestion. None for every other verb."""
    if not isinstance(argv, (list, tuple)) or not argv or argv[0] != "kubectl":
        return None
    verb = parsed.verb if parsed is not None else _verb_words(list(argv))
    if verb is None:
        return None
    reason = never_run_reason(verb)
    if reason is None and parsed is not None and not parsed.known_verb and verb != "top":
        reason = (f"kubectl {verb} is not a verb rag-k8s runs: no command card or allow-list "
                  "covers it")
    if reason is None:
        return None
    suggestion = _run_yourself(argv)
    if suggestion is not None:
        reason += "; run it yourself if you mean to"
    return _refusal([reason], suggestion, "high")


def _replica_cap(parsed: ParsedArgv, policy: Policy) -> list[str]:
    cap = policy.max_replicas
    flag = {"scale": "replicas", "autoscale": "max"}.get(parsed.verb)
    if flag is None:
        return []
    value = parsed.value(flag)
    if value is None:
        return [f"kubectl {parsed.verb} needs --{flag}"]
    if value.isdigit() and int(value) > cap:
        return [f"--{flag}={int(value)} is above the org's cap of {cap} replicas"]
    return []


def _refusal(reasons: list[str], suggestion: str | None, risk: str) -> Decision:
    return Decision(allowed=False, requires_confirmation=False, reasons=reasons,
                    suggestion=suggestion, risk_level=risk)


def _first_suggestion(findings: list[Finding]) -> str | None:
    return next((f.suggestion for f in findings if f.suggestion), None)


def validate(argv: list[str], *, card: Card | None, policy: Policy) -> Decision:
    """Judge the final argv: guardrails (CONTRACT §6), then the org allow-lists (§5), then risk (§4).

    Args:
        argv: the command exactly as it would run.
        card: the card the plan came from; its risk_level may raise the risk, never lower it.
        policy: the loaded org policy.

    The stages stop at the first that refuses: the raw argv's shape, then its analysis, then every
    guardrail on the parsed argv, then the allow-lists. An allowed medium or high risk command
    requires confirmation; a refused one never does.
    """
    card_risk = card.risk_level if card is not None else "none"
    try:
        parsed: ParsedArgv | None = parse_argv(argv)
    except ArgvError as e:
        parsed, problem = None, str(e)
    refused_verb = never_run(argv, parsed)
    if refused_verb is not None:
        return refused_verb
    subject = dict(forbidden_flags=policy.forbidden_flags, unsafe_drain=policy.unsafe_drain,
                   run_command_namespaces=policy.run_command_namespaces)
    raw = [f for g in GUARDRAILS for f in g(Subject(argv, None, **subject))]
    # A command that cannot be analysed is treated as the riskiest kind.
    risk = max_risk(risk_of(parsed), card_risk) if parsed is not None else "high"
    if raw:
        return _refusal([f.reason for f in raw], _first_suggestion(raw), risk)
    if parsed is None:
        return _refusal([f"the command could not be analysed, so it is refused: {problem}"],
                        None, risk)
    findings = [f for g in GUARDRAILS for f in g(Subject(argv, parsed, **subject))]
    if findings:
        return _refusal([f.reason for f in findings], _first_suggestion(findings), risk)
    reasons, suggestion = _allow_list(parsed, policy)
    if reasons:
        return _refusal(reasons, suggestion, risk)
    if RISK_ORDER[risk] < RISK_ORDER["medium"]:
        return Decision(allowed=True, requires_confirmation=False, risk_level=risk)
    intent = intents_of(parsed)[0]
    what = "scale to 0 replicas" if intent == "scale" and parsed.value("replicas") == "0" else intent
    return Decision(
        allowed=True, requires_confirmation=True, risk_level=risk,
        reasons=[f"{what} is {risk} risk: it runs only when confirmed (constraints.confirm)"],
    )


def allowed_namespaces(policy: Policy, intent: str, kind: str) -> list[str]:
    """The namespaces whose allow-list grants `intent` on `kind` (and whose RBAC ceiling allows
    the verb on it), in the policy file's order: for "scale is allowed in staging and dev"."""
    if kind in CLUSTER_SCOPED:
        return []  # governed by rbac-allowlist.yaml `cluster_scoped`, not per namespace
    verbs = [verb for verb, intents in VERB_INTENTS.items() if intent in intents]
    ceiling = any(kind in policy.verbs.get(v, ()) or "*" in policy.verbs.get(v, ()) for v in verbs)
    if not ceiling:
        return []
    return [ns for ns, rules in policy.namespaces.items()
            if kind in rules.get(intent, ()) or "*" in rules.get(intent, ())]
