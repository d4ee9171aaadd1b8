"""What rag-k8s tells people, worded for the door they came through, from one place.

The pipeline's reasons speak the JSON API (`constraints.confirm`, `params.replicas`), which is
what HTTP and MCP callers send. The CLI speaks its own flags (`--yes`, `--dry-run`, `-p`), so its
summaries pass every reason through `for_door(text, "cli")`. Hints for recovery live here too:
"did you mean" for mistyped values (difflib) and where the org policy would allow a refused action.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any, Literal

Door = Literal["cli", "api"]

# One row per request field a person may have to change: how each door spells it.
TERMS: dict[str, dict[Door, str]] = {
    "confirm": {"cli": "--yes", "api": "constraints.confirm"},
    "dry_run": {"cli": "--dry-run", "api": "constraints.dryRun"},
    "timeout": {"cli": "--timeout", "api": "constraints.timeout"},
    "preview_digest": {"cli": "--preview-digest", "api": "constraints.previewDigest"},
    "intent": {"cli": "--intent", "api": "intent"},
    "resource": {"cli": "--resource", "api": "resource"},
    "namespace": {"cli": "-n", "api": "namespace"},
    "name": {"cli": "--name", "api": "name"},
    "params": {"cli": "-p", "api": "params"},
}
_API_SPELLING = {row["api"]: key for key, row in TERMS.items() if row["api"].startswith("constr")}
_CONFIRM_CLAUSE = re.compile(r"it runs only when confirmed \(constraints\.confirm\)")
_API_TERM = re.compile(r"constraints\.(?:confirm|dryRun|timeout|previewDigest)\b")

DECLINED = "aborted: you declined at the prompt, so nothing ran"


def term(name: str, door: Door) -> str:
    """How `door` spells the request field `name` (`confirm` -> `--yes` or `constraints.confirm`)."""
    return TERMS[name][door]


def for_door(text: str, door: Door, *, confirmed: bool = False) -> str:
    """`text` (a reason, a hint) in the door's own terms; `confirmed` says the caller did confirm,
    so "it runs only when confirmed" no longer stands."""
    if door == "api":
        return text
    if confirmed:
        text = _CONFIRM_CLAUSE.sub(f"confirmed ({term('confirm', door)})", text)
    return _API_TERM.sub(lambda m: term(_API_SPELLING[m.group(0)], door), text)


def confirmation_note(door: Door) -> str:
    return f"it runs only when confirmed ({term('confirm', door)})"


def setting(field: str, value: Any, door: Door) -> str:
    """`--resource deployment`, `-p replicas=3`; `"resource": "deployment"` for the API."""
    if field.startswith("params."):
        key = field.split(".", 1)[1]
        return f"-p {key}={value}" if door == "cli" else f'"params": {{"{key}": {value!r}}}'
    if door == "cli":
        return f"{term(field, door)} {value}" if field in TERMS else f"{field}={value}"
    return f'"{field}": "{value}"'


# ---------------------------------------------------------------- did you mean


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice nearest `word` (difflib), or None when none is close."""
    if not isinstance(word, str) or not word:
        return None
    matches = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def request_hints(payload: Any, door: Door, namespaces: Iterable[str] = ()) -> list[str]:
    """"did you mean ..." for each mistyped field of a request: intent, kind, param keys, and a
    namespace the org policy does not list but one it does is close to."""
    from .request import request_schema
    from .vocab import INTENTS, RESOURCE_ALIASES, normalize_resource

    if not isinstance(payload, dict):
        return []
    hints: list[str] = []
    intent = payload.get("intent")
    if isinstance(intent, str) and intent not in INTENTS:
        near = did_you_mean(intent, INTENTS)
        if near:
            hints.append(f"did you mean {setting('intent', near, door)}?")
    resource = payload.get("resource")
    if isinstance(resource, str) and normalize_resource(resource) is None:
        names = {alias: kind for kind, aliases in RESOURCE_ALIASES.items()
                 for alias in (kind, *aliases)}
        near = did_you_mean(resource, names)
        if near:
            hints.append(f"did you mean {setting('resource', names[near], door)}?")
    params = payload.get("params")
    if isinstance(params, dict):
        known = request_schema()["properties"]["params"]["properties"]
        for key, value in params.items():
            if key not in known:
                near = did_you_mean(str(key), known)
                if near:
                    hints.append(f"did you mean {setting('params.' + near, value, door)}?")
    namespace = payload.get("namespace")
    listed = list(namespaces)
    if isinstance(namespace, str) and listed and namespace not in listed:
        near = did_you_mean(namespace, listed)
        if near:
            hints.append(f"did you mean {setting('namespace', near, door)}?")
    return hints


# ---------------------------------------------------------------- where it would be allowed


def where_allowed(result: dict[str, Any], policy: Any) -> str | None:
    """For a refusal by namespace: "scale on deployment is allowed in staging and dev", from the
    org policy; None when the refusal is not about the namespace or nowhere allows it."""
    from .errors import ArgvError
    from .kubectl_argv import parse_argv
    from .policy import allowed_namespaces, intents_of

    plan_ = result.get("plan") or {}
    reasons = (result.get("decision") or {}).get("reasons") or []
    if result.get("status") != "denied" or not plan_.get("argv"):
        return None
    if not any("namespace" in r for r in reasons):
        return None
    try:
        parsed = parse_argv(list(plan_["argv"]))
    except ArgvError:
        return None
    intents = intents_of(parsed)
    if not intents or parsed.kind is None or parsed.namespace is None:
        return None
    places = [ns for ns in allowed_namespaces(policy, intents[0], parsed.kind)
              if ns != parsed.namespace]
    if not places:
        return f"{intents[0]} on {parsed.kind} is allowed in no namespace of the org policy"
    listed = places[0] if len(places) == 1 else ", ".join(places[:-1]) + " and " + places[-1]
    return f"{intents[0]} on {parsed.kind} is allowed in {listed}"
