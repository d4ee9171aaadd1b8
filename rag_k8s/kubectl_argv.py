"""kubectl argv analysis: what a command really does, read the way kubectl (cobra/pflag) reads it.

The validator judges this parse, never a planner's description of the command. Flags are looked up
in a table taken from the pinned kubectl's `--help` (1.37.1), so `--watch pods` and `-n prod` are
split exactly as kubectl splits them; anything this module cannot read with certainty raises
`ArgvError`, which the validator turns into a refusal (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .errors import ArgvError
from .verbs import (
    GLOBAL_FLAGS, NEVER_RUN, OPTIONAL_DEFAULT, READ_ONLY_VERBS, SERVER_DRY_RUN_VERBS, VERBS,
    extends, is_prefix,
)
from .vocab import CATEGORIES, normalize_resource

FlagKind = Literal["bool", "value", "optional"]

# The flag tables, read-only verbs and dry-run support all come from the one verb table
# (rag_k8s/verbs.py, checked against the pinned kubectl 1.37.1 by tests/test_kubectl_argv.py).
_GLOBAL_FLAGS = GLOBAL_FLAGS
_VERB_FLAGS: dict[str, tuple[str, str, str]] = {w: spec.flags for w, spec in VERBS.items()}
_OPTIONAL_DEFAULT = OPTIONAL_DEFAULT
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


@dataclass(frozen=True)
class FlagSpec:
    long: str
    short: str | None
    kind: FlagKind


@dataclass(frozen=True)
class FlagTable:
    by_long: Mapping[str, FlagSpec]
    by_short: Mapping[str, FlagSpec]


def _table(*groups: tuple[str, str, str]) -> FlagTable:
    by_long: dict[str, FlagSpec] = {}
    by_short: dict[str, FlagSpec] = {}
    for bools, values, optionals in groups:
        for kind, words in (("bool", bools), ("value", values), ("optional", optionals)):
            for word in words.split():
                short, _, long = word.rpartition("/")
                spec = FlagSpec(long, short or None, kind)  # type: ignore[arg-type]
                by_long[long] = spec
                if short:
                    by_short[short] = spec
    return FlagTable(by_long, by_short)


GLOBAL_TABLE = _table(_GLOBAL_FLAGS)
VERB_TABLES: dict[str, FlagTable] = {
    verb: _table(_GLOBAL_FLAGS, groups) for verb, groups in _VERB_FLAGS.items()
}


@dataclass(frozen=True)
class ParsedArgv:
    """One kubectl command as kubectl would read it."""

    argv: tuple[str, ...]
    verb: str  # `get`, `rollout restart`, `auth can-i`, `set image`, `top`, or an unknown word
    known_verb: bool  # False: flags were read leniently, and the verb is on no allow-list
    resource: str | None  # the kind as written (`deploy`, `deployments.apps`, `*`)
    kind: str | None  # canonical kind (vocab.normalize_resource); None when unknown or absent
    names: tuple[str, ...]
    namespace: str | None
    flags: Mapping[str, tuple[str, ...]]  # long name -> every value given, in order
    positional: tuple[str, ...]  # positional arguments after the verb, as written
    pre_verb_flags: tuple[str, ...]  # long names of the flags placed before the verb
    extra: tuple[str, ...] = ()  # positionals that are neither kind nor name (can-i verb, c=image)
    trailing: tuple[str, ...] = ()  # everything after `--`
    flag_tokens: tuple[str, ...] = field(default=())  # the argv tokens that spelled flags

    @property
    def name(self) -> str | None:
        return self.names[0] if self.names else None

    @property
    def mutating(self) -> bool:
        return self.verb not in READ_ONLY_VERBS

    def value(self, flag: str) -> str | None:
        """The value kubectl uses for `flag` (the last one given), or None when absent."""
        values = self.flags.get(flag)
        return values[-1] if values else None

    def is_true(self, flag: str) -> bool:
        """A boolean flag's effective value (`-A`, `--all-namespaces=true`)."""
        return self.value(flag) == "true"


def _bool(flag: str, text: str) -> str:
    if text in _TRUE:
        return "true"
    if text in _FALSE:
        return "false"
    raise ArgvError(f"--{flag}={text!r} is not true or false")


class _Reader:
    """Walks the argv once, the way pflag does, collecting flags and positionals."""

    def __init__(self, argv: list[str]) -> None:
        self.tokens = argv[1:]
        self.i = 0
        self.flags: dict[str, list[str]] = {}
        self.flag_tokens: list[str] = []

    def next_value(self, flag: str) -> str:
        if self.i >= len(self.tokens):
            raise ArgvError(f"flag --{flag} needs a value")
        value = self.tokens[self.i]
        self.flag_tokens.append(value)
        self.i += 1
        return value

    def add(self, flag: str, value: str) -> None:
        self.flags.setdefault(flag, []).append(value)

    def read_flag(self, token: str, table: FlagTable, *, strict: bool, where: str) -> list[str]:
        """Consume one flag token (and its value if separate); returns the long names it set."""
        self.flag_tokens.append(token)
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            spec = table.by_long.get(name)
            if spec is None:
                if strict or not name:
                    raise ArgvError(f"unknown flag --{name} {where}")
                self.add(name, value if eq else "true")
                return [name]
            if spec.kind == "bool":
                self.add(name, _bool(name, value) if eq else "true")
            elif spec.kind == "optional":
                self.add(name, value if eq else _OPTIONAL_DEFAULT.get(name, ""))
            else:
                self.add(name, value if eq else self.next_value(name))
            return [name]
        # Short flags: `-A`, `-nprod`, `-n=prod`, `-n prod`, bundles like `-Rw`.
        shorthands = token[1:]
        set_: list[str] = []
        while shorthands:
            spec = table.by_short.get(shorthands[0])
            if spec is None:
                if strict:
                    raise ArgvError(f"unknown flag -{shorthands[0]} {where}")
                self.add(shorthands[0], "true")
                set_.append(shorthands[0])
                shorthands = shorthands[1:]
                continue
            set_.append(spec.long)
            if len(shorthands) > 2 and shorthands[1] == "=":
                value = shorthands[2:]
                self.add(spec.long, _bool(spec.long, value) if spec.kind == "bool" else value)
                break
            if spec.kind == "bool":
                self.add(spec.long, "true")
                shorthands = shorthands[1:]
                continue
            if spec.kind == "optional":
                self.add(spec.long, _OPTIONAL_DEFAULT.get(spec.long, ""))
                shorthands = shorthands[1:]
                continue
            self.add(spec.long, shorthands[1:] if len(shorthands) > 1 else self.next_value(spec.long))
            break
        return set_


def _is_flag(token: str) -> bool:
    return token.startswith("-") and token != "-"


def parse_argv(argv: list[str]) -> ParsedArgv:
    """Analyse a kubectl argv: verb, kind, names, namespace and every flag with its values.

    Args:
        argv: the full argv, `kubectl` first.

    Raises `ArgvError` for anything that cannot be read with certainty: a first element other than
    `kubectl`, an unknown flag of a known verb, a flag missing its value, several kinds in one
    command, or the namespace given more than once.
    """
    if not isinstance(argv, (list, tuple)) or not all(isinstance(t, str) for t in argv):
        raise ArgvError("the command must be a list of strings")
    if not argv or argv[0] != "kubectl":
        raise ArgvError("the command must start with `kubectl`")
    argv = list(argv)
    reader = _Reader(argv)
    pre_verb: list[str] = []
    words: list[str] = []
    # Before the verb is known only global flags can be read (kubectl's own rule). The verb is
    # the longest run of words the verb table knows (`create service clusterip`, `rollout pause`).
    while reader.i < len(reader.tokens):
        token = reader.tokens[reader.i]
        if token == "--":
            break
        if _is_flag(token):
            if words and " ".join(words) in VERBS:
                break  # `create -f`: the verb's own flags follow
            reader.i += 1
            where = "before the verb" if not words else f"after `kubectl {words[0]}`"
            pre_verb += reader.read_flag(token, GLOBAL_TABLE, strict=True, where=where)
            continue
        if words and words[0] == "top":
            words.append(token)  # `top pods`, `top no`: normalised below
            reader.i += 1
            break
        candidate = (*words, token)
        if words and not is_prefix(candidate):
            known = VERBS.get(" ".join(words))
            if (known is not None and known.targets not in ("none", "files")) or (
                known is None and " ".join(words) in NEVER_RUN
            ):
                break  # `exec pod`: the token is a positional
            # `create secret`, `cluster-info foo`, `config frobnicate`: an unknown sub-command
            words.append(token)
            reader.i += 1
            break
        words.append(token)
        reader.i += 1
        if not extends(candidate):
            break
    if not words:
        raise ArgvError("the command has no kubectl verb")
    joined = " ".join(words)
    if words[0] in ("rollout", "set", "top") and len(words) < 2 and joined not in VERBS:
        raise ArgvError(f"`kubectl {words[0]}` needs a sub-command")

    top_kind: str | None = None
    if words[0] == "top":
        top_kind = normalize_resource(words[1])
        if top_kind not in ("pod", "node"):
            raise ArgvError(f"`kubectl top {words[1]}` is not `top pod` or `top node`")
        verb, table_key = "top", f"top {top_kind}"
    else:
        verb = table_key = joined
    table = VERB_TABLES.get(table_key)
    strict = table is not None
    where = f"for `kubectl {verb}`"

    positional: list[str] = []
    trailing: list[str] = []
    while reader.i < len(reader.tokens):
        token = reader.tokens[reader.i]
        reader.i += 1
        if token == "--":
            trailing = reader.tokens[reader.i:]
            break
        if _is_flag(token):
            reader.read_flag(token, table or GLOBAL_TABLE, strict=strict, where=where)
        else:
            positional.append(token)

    namespaces = reader.flags.get("namespace", [])
    if len(namespaces) > 1:
        raise ArgvError(
            "the namespace is given more than once (" + ", ".join(namespaces) + "); give it once"
        )
    resource, kind, names, extra = _targets(verb, top_kind, positional, reader.flags, strict)
    return ParsedArgv(
        argv=tuple(argv),
        verb=verb,
        known_verb=strict,
        resource=resource,
        kind=kind,
        names=tuple(names),
        namespace=namespaces[0] if namespaces else None,
        flags={k: tuple(v) for k, v in reader.flags.items()},
        positional=tuple(positional),
        pre_verb_flags=tuple(dict.fromkeys(pre_verb)),
        extra=tuple(extra),
        trailing=tuple(trailing),
        flag_tokens=tuple(reader.flag_tokens),
    )


def _split_kind_name(token: str) -> tuple[str, str]:
    resource, _, name = token.partition("/")
    if not resource or not name or "/" in name:
        raise ArgvError(f"{token!r} is not in the form kind/name")
    return resource, name


def _targets(
    verb: str, top_kind: str | None, positional: list[str], flags: Mapping[str, list[str]],
    strict: bool,
) -> tuple[str | None, str | None, list[str], list[str]]:
    """(resource as written, canonical kind, names, extra positionals) for one verb, read the way
    the verb table's `targets` says."""
    spec = VERBS.get(f"top {top_kind}" if verb == "top" else verb)
    how = spec.targets if spec is not None else "object"
    if how == "top":
        if len(positional) > 1:
            raise ArgvError("`kubectl top` takes at most one name")
        return top_kind, top_kind, positional, []
    if how == "events":
        if positional:
            raise ArgvError("`kubectl events` takes no positional arguments; use --for=kind/name")
        return "events", "event", [], []
    if how == "pod":
        if not positional:
            # `kubectl logs -l app=web`: the pods the selector picks.
            return ("pod", "pod", [], []) if flags.get("selector") else (None, None, [], [])
        if len(positional) > 2:
            raise ArgvError("`kubectl logs` takes a pod and at most one container")
        first, extra = positional[0], positional[1:]
        if "/" in first:
            resource, name = _split_kind_name(first)
            return resource, normalize_resource(resource), [name], extra
        return "pod", "pod", [first], extra
    if how in ("nodes", "taint"):
        return _node_targets(verb, positional, taint=how == "taint")
    if how == "can-i":
        if not positional and flags.get("list") and flags["list"][-1] == "true":
            return "*", "*", [], []  # `auth can-i --list`: every kind, in the namespace
        return _can_i_targets(positional)
    if how == "files":
        # `apply -f x deployment/api`: kept as extras, for rag_k8s/manifests.py to refuse in its
        # own words (files verbs name their objects through -f/-k only).
        return None, None, [], positional
    if how == "none":
        if positional:
            raise ArgvError(f"`kubectl {verb}` takes no positional arguments here, "
                            f"not {positional[0]!r}")
        return None, None, [], []
    if how == "schema":
        if len(positional) != 1:
            raise ArgvError("`kubectl explain` takes one resource, like deployment.spec.replicas")
        first = positional[0].split(".")[0]
        return positional[0], normalize_resource(first), [], []
    if how == "named":
        assert spec is not None
        if len(positional) != 1:
            raise ArgvError(f"`kubectl {verb}` takes exactly one name")
        return spec.kind, spec.kind, positional, []
    return _resource_targets(verb, positional, strict, pairs=how == "pairs")


def _is_pair(token: str) -> bool:
    """A `key=value` or `key-` argument (label, annotate, set env, set image); names never hold
    `=` and never end with `-` (DNS-1123)."""
    return "=" in token or token.endswith("-")


def _node_targets(verb: str, positional: list[str], *, taint: bool
                  ) -> tuple[str | None, str | None, list[str], list[str]]:
    names: list[str] = []
    extra: list[str] = []
    tokens = list(positional)
    if taint:
        # `kubectl taint nodes n1 n2 key=value:Effect key:Effect-`: the kind comes first.
        if not tokens:
            raise ArgvError("`kubectl taint` needs nodes, a node name and a taint")
        first = tokens[0]
        if "/" not in first:
            if normalize_resource(first) != "node":
                raise ArgvError(f"`kubectl taint` acts on nodes, not {first!r}")
            tokens = tokens[1:]
    for token in tokens:
        if taint and (":" in token or _is_pair(token)):
            extra.append(token)
            continue
        if extra:
            raise ArgvError(f"{token!r} comes after the taints; name the nodes first")
        if "/" in token:
            resource, token = _split_kind_name(token)
            if normalize_resource(resource) != "node":
                raise ArgvError(f"`kubectl {verb}` acts on nodes, not {resource!r}")
        names.append(token)
    return "node", "node", names, extra


def _can_i_targets(positional: list[str]) -> tuple[str | None, str | None, list[str], list[str]]:
    if not positional:
        return None, None, [], []
    asked, rest = positional[0], positional[1:]
    if not rest:
        return None, None, [], [asked]
    if len(rest) > 2:
        raise ArgvError("`kubectl auth can-i` takes a verb, a resource and at most one name")
    target, names = rest[0], rest[1:]
    if "/" in target and not target.startswith("/"):
        target, name = _split_kind_name(target)
        if names:
            raise ArgvError("give the name either as kind/name or as a separate word")
        names = [name]
    kind = "*" if target == "*" else normalize_resource(target)
    return target, kind, names, [asked]


def _kind_of(resource: str) -> str | None:
    """The canonical kind, or the category name (`all`) kubectl expands."""
    return normalize_resource(resource) or (resource if resource in CATEGORIES else None)


def _resource_targets(
    verb: str, positional: list[str], strict: bool, *, pairs: bool = False
) -> tuple[str | None, str | None, list[str], list[str]]:
    # label, annotate, set env and set image end with key=value / key- pairs.
    if pairs:
        split = next((i for i, t in enumerate(positional) if _is_pair(t)), len(positional))
        objects, extra = positional[:split], positional[split:]
        stray = [t for t in extra if not _is_pair(t)]
        if stray:
            raise ArgvError(f"{stray[0]!r} comes after the key=value pairs; name objects first")
    else:
        objects, extra = positional, []
    if not objects:
        return None, None, [], extra
    if not strict:  # a verb on no allow-list: a best-effort reading, for the refusal's wording
        first = objects[0]
        if "/" in first:
            resource, _, name = first.partition("/")
            return resource, normalize_resource(resource), [name], extra + objects[1:]
        return first, normalize_resource(first), objects[1:], extra
    if "/" in objects[0]:
        kinded = []
        for token in objects:
            if "/" not in token:
                raise ArgvError(
                    f"{token!r} mixes kind/name and separate names; use one form"
                )
            kinded.append(_split_kind_name(token))
        kinds = {normalize_resource(r) or r for r, _ in kinded}
        if len(kinds) > 1:
            raise ArgvError("the command names more than one kind; give one kind per command")
        resource = kinded[0][0]
        return resource, normalize_resource(resource), [n for _, n in kinded], extra
    resource, names = objects[0], objects[1:]
    if "," in resource:
        raise ArgvError(
            f"{resource!r} names several kinds; give one kind per command"
        )
    for name in names:
        if "/" in name:
            raise ArgvError(f"{name!r} mixes kind/name and separate names; use one form")
    return resource, _kind_of(resource), names, extra


def with_server_dry_run(argv: list[str]) -> list[str] | None:
    """The argv with `--dry-run=server`, or None when the verb has no server-side dry run.

    Only the pinned kubectl's own list counts (`rollout restart` has no `--dry-run`); read-only
    verbs need no dry run and give None too, as does an argv that cannot be analysed.
    """
    try:
        parsed = parse_argv(argv)
    except ArgvError:
        return None
    if parsed.verb not in SERVER_DRY_RUN_VERBS:
        return None
    if parsed.flags.get("dry-run") == ("server",):
        return list(argv)
    out = list(argv)
    if "--" in out:
        out.insert(out.index("--"), "--dry-run=server")
    else:
        out.append("--dry-run=server")
    return out


def redacted_env_argv(argv: list[str]) -> list[str]:
    """The argv with the value of every secret-looking variable hidden: `set env` pairs
    (`DB_PASSWORD=x`), `--env=K=V` / `-e K=V` and `--from-literal=K=V`. "Secret-looking" is the one
    rule of rag_k8s.redact (`is_credential_key`); the audit log applies it to every argument, and
    this helper lets any other display do the same."""
    from .redact import REDACTED, is_credential_key

    def hide(pair: str) -> str:
        key, eq, value = pair.partition("=")
        return f"{key}={REDACTED}" if eq and value and is_credential_key(key) else pair

    out: list[str] = []
    for i, arg in enumerate(argv):
        prefix = next((p for p in ("--env=", "--from-literal=") if arg.startswith(p)), None)
        if prefix is not None:
            out.append(prefix + hide(arg[len(prefix):]))
        elif i and argv[i - 1] in ("-e", "--env", "--from-literal") or (
            not arg.startswith("-") and "=" in arg
        ):
            out.append(hide(arg))
        else:
            out.append(arg)
    return out
