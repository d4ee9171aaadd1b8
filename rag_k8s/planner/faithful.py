"""The whole-request check: a plan from plain words does all that the words ask, or nothing.

Two stages, around planning (docs/architecture.md, "How free text is checked for faithfulness"):

1. `screen_request`, before any planner: one request is one action. Text after a command separator,
   a line break or inside markup, a second action verb, and words that claim approval, policy or
   a role are refused (`invalid`, naming the part). Dry-run words make the request a dry run. A
   verb rag-k8s never runs is refused (`denied` with the command to run yourself). A context or
   cluster the words name must be the kubeconfig's current one: words never choose the cluster.
2. `check_request` (after the one extraction) and `check_plan` (on whatever plan came out, from
   the template or the MLX planner): the words' action must be the card's intent, a misspelt
   kind or namespace is asked about, every value the extractor read must be in the plan's slots,
   and every part of the text no stage read must be filler English. A flag, a `key=value`, a
   number, a path, an identifier or a condition ("only", "except", "unless") that nothing in the
   plan honours makes the result `invalid` with `cannot honour "<part>": <card> ...`.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequest, NoMatch, RefusedAction
from .extract import _KIND_RE, _KIND_WORDS, STOPWORDS, Extraction, extract
from .lexicon import ACTION_VERBS, NEVER_RUN_RES, OPTION_RE, OTHER_KIND_RE, OTHER_KINDS, NeverRun

if TYPE_CHECKING:
    from ..cards import Card, Corpus
    from ..request import Request
    from . import Plan

# ----------------------------------------------------------------------------- one request, one action

# Line and paragraph separators (and other control characters): what follows is another message.
_LINE_BREAK = re.compile(r"[\n\r\v\f\x85\u2028\u2029\x00-\x08\x0e-\x1f\x7f]")
_MARKUP = re.compile(r"<!--|-->|```|~~~|<\s*/?\s*[a-z][\w-]*(?:\s[^<>]*)?>|\[/?(?:INST|SYS)\]"
                     r"|<\|[\w_]+\|>", re.I)
# Shell command separators and substitutions.
_SEPARATOR = re.compile(r";|&&|\|\||\||`|\$\(|\$\{|(?<![\w-])&(?![\w-])|>\s*/|<\(")
# Words that claim an authority a query cannot carry (only constraints.confirm confirms).
_AUTHORITY = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+)*"
    r"(?:(?:previous|prior|above|earlier|preceding|safety|policy|policies|system|rbac)\s+)*"
    r"(?:previous|prior|above|earlier|preceding|safety|policy|policies|rules?|guardrails?|"
    r"instructions?|checks?|confirmations?|restrictions?|limits?|prompts?)\b"
    r"|\b(?:system|assistant|developer|admin)\s*(?:prompt|message|note|override)?\s*:"
    r"|\bpolic(?:y|ies)\s+(?:is\s+|are\s+|has\s+been\s+|have\s+been\s+)?(?:now\s+)?"
    r"(?:disabled|off|lifted|suspended|overridden|bypassed|waived|removed)\b"
    r"|\b(?:operator|admin(?:istrator)?|manager|lead|sre|on-?call|security(?:\s+team)?|owner|boss|"
    r"cto|team|user)\s+(?:has\s+|have\s+|already\s+)*(?:approved|authori[sz]ed|confirmed|okayed|"
    r"signed\s+off|allowed|permitted|said\s+(?:it'?s\s+)?(?:ok|okay|fine))\b"
    r"|\b(?:pre-?approved|already\s+(?:approved|confirmed|authori[sz]ed)|approval\s+(?:granted|given)"
    r"|(?:is|was)\s+approved|(?:i|we)\s+(?:confirm|approve|authori[sz]e))\b"
    r"|\b(?:no|without|skip(?:ping)?)\s+(?:the\s+|any\s+)?(?:need\s+for\s+|further\s+)?"
    r"(?:confirmation|approval|asking)\b"
    r"|\bconfirm(?:ed)?\s*[:=]\s*(?:true|yes|1)\b|--confirm\b|--yes\b|(?<![\w-])-y(?![\w-])"
    r"|\byou\s+are\s+(?:now\s+)?(?:an?\s+|the\s+)?(?:admin|root|cluster-admin|superuser|operator|"
    r"unrestricted|allowed|authori[sz]ed)\b"
    r"|\b(?:as|with)\s+(?:an?\s+)?(?:admin|root|cluster-admin|superuser)\s*(?:rights|privileges|"
    r"role|access)?\b|\bsudo\b|\b(?:role|permissions?)\s*[:=]\s*\S+"
    r"|\b(?:developer|god|admin|debug|maintenance)\s+mode\b|\bjailbreak\b",
    re.I,
)
_DRY_RUN = re.compile(
    r"(?<![\w-])--dry-run(?:[= ](?:client|server))?(?![\w-])"
    r"|\bdry[- ]?run(?:\s+only)?\s*[:,-]?"
    r"|\b(?:just\s+|only\s+)?preview(?:\s+only)?\s*(?:of\s+)?[:,-]?"
    r"|\bwhat\s+would\s+happen\s+if\s+(?:i|we|you)?\b|\bsimulate\b"
    r"|\b(?:without|but\s+don'?t|but\s+do\s+not|do\s+not|don'?t)\s+actually\s+"
    r"(?:doing\s+it|changing\s+anything|running\s+it|applying\s+it|(?:do|change|run|apply)\s+"
    r"(?:it|anything))\b"
    r"|\bwithout\s+(?:changing|touching)\s+anything\b|\bpretend\s+to\b",
    re.I,
)
# A kube context or cluster named in the words (the kubeconfig decides; see _context_names).
_CTX_NAME = r"([A-Za-z0-9][\w.@:-]*[A-Za-z0-9]|[A-Za-z0-9])"
_CONTEXT = (
    re.compile(r"(?<![\w-])--(?:context|cluster)(?:=|\s+)" + _CTX_NAME, re.I),
    re.compile(r"(?<![\w-])(--(?:kubeconfig|server|user|token|as|as-group|username|password|"
               r"certificate-authority|client-key|client-certificate|insecure-skip-tls-verify)"
               r"(?:=|\s+)?)(\S*)", re.I),
    re.compile(r"\b(?:in|on|using|against|with|from|for|via|under|within)\s+(?:the\s+|my\s+)?"
               + _CTX_NAME + r"\s+(?:kube-?)?(?:context|cluster)\b", re.I),
    re.compile(r"\b(?:in|on|using|against|with|from|via|under)\s+(?:the\s+)?(?:kube-?)?"
               r"(?:context|cluster)\s+(?:named\s+|called\s+)?[\"']?" + _CTX_NAME, re.I),
)
# Clause joiners that may start a second instruction.
_JOINER = re.compile(r"(?:,\s*|\s)(?:and\s+then|and\s+also|and|then|also|after\s+that|afterwards|"
                     r"followed\s+by|plus|next)\s*,?\s+(?:please\s+|kubectl\s+|go\s+(?:and\s+)?"
                     r"|also\s+|immediately\s+|quickly\s+)*([a-z][\w-]*)", re.I)


def _quote(part: str, limit: int = 60) -> str:
    part = " ".join(part.split())
    return '"' + (part if len(part) <= limit else part[:limit - 3] + "...") + '"'


def _second_part(text: str, start: int) -> str:
    return _quote(text[start:].strip(" ;&|`"), 60) if text[start:].strip(" ;&|`") else \
        _quote(text[start:])


def one_action(text: str) -> None:
    """Refuse text that carries a second instruction; InvalidRequest names the part."""
    m = _LINE_BREAK.search(text.strip())
    if m:
        rest = text.strip()[m.end():]
        raise InvalidRequest("query", "one request, one action: the text after a line break "
                             f"({_second_part(rest, 0)}) is another instruction; nothing was "
                             "planned. Send each action as its own request")
    m = _MARKUP.search(text)
    if m:
        raise InvalidRequest("query", f"one request, one action: markup ({_quote(m.group(0))}) "
                             f"can hide another instruction ({_second_part(text, m.start())}); "
                             "nothing was planned. Ask in plain words")
    m = _SEPARATOR.search(text)
    if m:
        raise InvalidRequest("query", f"one request, one action: the text after "
                             f"{_quote(m.group(0))} ({_second_part(text, m.end())}) is a second "
                             "command; nothing was planned. Send each action as its own request")
    m = _AUTHORITY.search(text)
    if m:
        raise InvalidRequest("query", f"words about approval, policy or roles carry no authority "
                             f"({_quote(m.group(0))}); nothing was planned. Ask again without them; "
                             "to confirm a change, set constraints.confirm")


def one_verb(text: str) -> None:
    """Refuse two actions joined by "and", "then", "also" ... naming the second."""
    for m in _JOINER.finditer(text):
        verb = m.group(1).lower()
        if verb in ACTION_VERBS:
            raise InvalidRequest("query", "one request, one action: "
                                 f"{_second_part(text, m.start(1))} is a second action; nothing "
                                 "was planned. Send each action as its own request")


# ----------------------------------------------------------------------------- never-run verbs

def never_run(text: str) -> tuple[NeverRun, re.Match[str]] | None:
    """The never-run verb the words ask for, with the words that ask for it."""
    for verb, patterns in NEVER_RUN_RES:
        for rx in patterns:
            m = rx.search(text)
            if m:
                return verb, m
    return None


def refuse_never_run(text: str) -> None:
    """Raise RefusedAction when the words ask for a verb rag-k8s never runs."""
    found = never_run(text)
    if found is None:
        return
    verb, m = found
    whole = extract(text)
    blanked = extract(text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():])
    # The object the words name: read from the whole text first (the verb phrase may hold the
    # kind word, "inside pod mypod"), else from the text without the verb phrase.
    rest = whole if whole.name and whole.name not in m.group(0).lower().split() else blanked
    idents = [w for w in _IDENT.findall(text[m.end():]) if w.lower() not in STOPWORDS]
    ports = re.findall(r"(?<![\w.-])(\d{2,5}(?::\d{2,5})?)(?![\w.-])", text)
    ctx = _context_names(text)
    fill = {
        "name": rest.name or "<name>",
        "ns": rest.namespace or "<namespace>",
        "kind": rest.resource if rest.resource and rest.resource_explicit else "pod",
        "ports": " ".join(ports) or "<local-port>:<pod-port>",
        "context": ctx[0][0] if ctx else _context_word(text) or "<context>",
    }
    if verb.verb == "certificate" and idents:
        fill["name"] = idents[0]
    suggestion = verb.suggestion.format(**fill)
    if verb.verb == "edit" and rest.resource == "node":
        suggestion = suggestion.replace(" -n <namespace>", "")
    raise RefusedAction(verb.verb, f"rag-k8s never runs `kubectl {verb.verb}` "
                        f"({_quote(m.group(0))} asks for it): {verb.why}. Run it yourself if you "
                        f"mean it: {suggestion}", suggestion=suggestion,
                        argv=None if "<" in suggestion else shlex.split(suggestion))


# ----------------------------------------------------------------------------- contexts

def _context_word(text: str) -> str | None:
    """The context a config request names: "the staging-cluster context", "context minikube"."""
    for rx in (r"([\w.@:-]+)\s+(?:kube-?)?context\b", r"\bcontext\s+(?:named\s+|called\s+)?([\w.@:-]+)"):
        for m in re.finditer(rx, text, re.I):
            if m.group(1).lower() not in STOPWORDS | {"current", "kube", "my"}:
                return m.group(1)
    return None


def current_context() -> str | None:
    """The kubeconfig's current-context (KUBECONFIG's files in order, else ~/.kube/config)."""
    import yaml

    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p] or [
        str(Path("~/.kube/config").expanduser())]
    for path in paths:
        try:
            data = yaml.safe_load(Path(path).expanduser().read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("current-context"):
            return str(data["current-context"])
    return None


def _context_names(text: str) -> list[tuple[str, re.Match[str]]]:
    out = []
    for rx in _CONTEXT:
        for m in rx.finditer(text):
            word = m.group(1)
            if word.startswith("--"):
                out.append((word, m))  # a credential or kubeconfig flag: always refused
                continue
            if word.lower() in STOPWORDS or word.lower() in ("current", "same", "this", "whole"):
                continue
            out.append((word, m))
    return out


def _strip(text: str, spans: list[tuple[int, int]]) -> str:
    for a, b in sorted(spans, reverse=True):
        text = text[:a] + " " + text[b:]
    return " ".join(text.split())


def screen_request(request: Request) -> Request:
    """The request with its text's mode words applied (dry run) and its context names checked.

    Raises InvalidRequest (a second instruction, authority words, a foreign context),
    RefusedAction (a never-run verb). Free text only is read for never-run verbs: a structured
    request's intent says what to do.
    """
    text = request.query
    if not text:
        return request
    one_action(text)
    if request.intent is None:
        refuse_never_run(text)  # before one_verb: "attach to pod x and watch it" is an attach
    one_verb(text)
    spans: list[tuple[int, int]] = []
    dry_run = request.dry_run
    for m in _DRY_RUN.finditer(text):
        dry_run = True
        spans.append(m.span())
    contexts = _context_names(text)
    if contexts:
        current = current_context()
        for word, m in contexts:
            if word.startswith("--"):
                raise InvalidRequest("query", f"cannot honour {_quote(m.group(0))}: the kubeconfig "
                                     "rag-k8s was started with chooses the cluster and the user, "
                                     "never the words")
            if current is None or word != current:
                now = f"the current context is {current!r}" if current else \
                    "no current context could be read from the kubeconfig"
                raise InvalidRequest("query", f"cannot honour {_quote(m.group(0))}: rag-k8s acts "
                                     f"only on the kubeconfig's current context ({now}); switch "
                                     f"yourself with `kubectl config use-context {word}` and ask "
                                     "again without naming it")
            spans.append(m.span())
    if not spans:
        return replace(request, dry_run=dry_run)
    cleaned = _strip(text, spans) or text
    return replace(request, query=cleaned, dry_run=dry_run)


# ----------------------------------------------------------------------------- before planning

# Common long forms of short namespace names, for "did you mean" ("porduction" -> prod).
_LONG_FORMS = {"prod": ("production", "prd"), "dev": ("development", "develop"),
               "staging": ("stage", "stg"), "test": ("testing",), "qa": ("quality",)}
# Action words the intents are asked with, for "did you mean" on a misspelt verb.
_INTENT_WORDS = ("restart", "rollback", "describe", "delete", "scale", "drain", "cordon",
                 "uncordon", "autoscale", "logs", "events", "diagnose", "rollout", "history",
                 "status", "list", "show", "label", "annotate", "taint", "expose", "explain",
                 "create", "patch", "apply", "pause", "resume")


def _close(word: str, vocabulary: list[str], cutoff: float = 0.8) -> str | None:
    if len(word) < 4:
        return None
    found = difflib.get_close_matches(word, vocabulary, n=1, cutoff=cutoff)
    return found[0] if found and found[0] != word else None


def _namespace_guess(word: str, namespaces: list[str]) -> str | None:
    if word in namespaces:
        return None
    forms = {w: ns for ns in namespaces for w in (ns, *_LONG_FORMS.get(ns, ()))}
    hit = _close(word, list(forms), cutoff=0.75)
    return forms[hit] if hit else None


def check_request(request: Request, ex: Extraction, corpus: Corpus,
                  namespaces: list[str]) -> None:
    """Before planning free text: an intent with no card, misspelt words, and parts that no card
    could honour (a flag, a condition, a kind no card covers, a value no card of the intent
    takes) are refused, so no question about a missing slot hides them."""
    if ex.intent is not None and not corpus.matching(ex.intent):
        raise NoMatch(f"no command card does {ex.intent} yet: the words ask to {ex.intent}, "
                      "and no other command would do what they ask; nothing was planned")
    m = _SCOPE.search(ex.text) if ex.resource != "namespace" else None
    if m:
        raise InvalidRequest("query", f"cannot honour {_quote(m.group(0))}: a command here works in "
                             "one namespace (or on cluster-scoped kinds); name the namespace")
    known = [k.span() for k in _KIND_RE.finditer(ex.text)]
    for m in OTHER_KIND_RE.finditer(ex.text):
        word = m.group(0)
        if any(a <= m.start() and m.end() <= b for a, b in known):
            continue  # inside a kind a card covers ("persistent volume claims")
        if (" " in word or "-" in word or len(word) >= 6) and word.lower() not in (
                ex.name, ex.namespace):
            raise NoMatch(f"no command card acts on {_other_kind(word) or word} "
                          f"({_quote(word)}); nothing was planned")
    intent_cards = (corpus.matching(ex.intent, ex.resource if ex.resource_explicit else None)
                    or corpus.matching(ex.intent)) if ex.intent else []
    for rx, part in _leftovers(ex, _NEVER_READ):
        flag = option_flag(part) if rx in (_FLAG, OPTION_RE) else None
        if flag and any(_card_has(c, flag) for c in intent_cards):
            continue  # a card of this intent carries the flag (drain-node-force): planning picks it
        if rx is OTHER_KIND_RE:
            kind = _other_kind(part) or part
            raise NoMatch(f"no command card acts on {kind} ({_quote(part)}); nothing was planned")
        raise InvalidRequest("query", f"cannot honour {_quote(part)}: {_cards_phrase(ex, corpus)} "
                             "take it; nothing was planned")
    if ex.intent is not None:
        cards = corpus.matching(ex.intent, ex.resource if ex.resource_explicit else None) or \
            corpus.matching(ex.intent)
        for slot, value in ex.params.items():
            if cards and not any(slot in c.placeholders for c in cards):
                raise InvalidRequest(_field(slot), f"cannot honour {slot} {_quote(str(value))}: "
                                     f"{_cards_phrase(ex, corpus)} take it; nothing was planned")
    if ex.namespace and request.namespace is None:
        guess = _namespace_guess(ex.namespace, namespaces)
        if guess:
            raise InvalidRequest("namespace", f"did you mean {guess}? {_quote(ex.namespace)} is "
                                 "no namespace the policy knows; say the namespace as it is spelt")
    kind_words = sorted(w for w in _KIND_WORDS if " " not in w and len(w) > 3)
    words = re.findall(r"[a-z][a-z-]*[a-z]", ex.text.lower())
    if ex.name and not ex.resource_explicit and request.resource is None:
        guess = _close(ex.name, kind_words)
        if guess:
            raise InvalidRequest("resource", f"did you mean {_KIND_WORDS[guess]}? "
                                 f"{_quote(ex.name)} looks like a misspelt kind, not a name")
    # A word a slot read as its value ("phase" of status.phase=Running) is no misspelt verb.
    value_words = set(re.findall(r"[a-z][a-z-]*[a-z]", " ".join(map(str, ex.params.values())).lower()))
    if ex.intent is None or ex.intent_implied:
        for word in words:
            if word in STOPWORDS or word in _KIND_WORDS or word in value_words:
                continue
            guess = _close(word, list(_INTENT_WORDS), cutoff=0.8)
            if guess:
                raise InvalidRequest("query", f"did you mean {guess}? {_quote(word)} reads like "
                                     "a misspelt action word; nothing was planned")
    if not ex.resource_explicit and request.resource is None:
        for word in words:
            if word in STOPWORDS or word == ex.name:
                continue
            guess = _close(word, kind_words, cutoff=0.85)
            if guess and word not in _KIND_WORDS:
                raise InvalidRequest("resource", f"did you mean {_KIND_WORDS[guess]}? "
                                     f"{_quote(word)} looks like a misspelt kind")


# ----------------------------------------------------------------------------- after planning

# Equivalent readings: the events cards serve "get events"; diagnose reads what describe shows.
_SAME_ACTION = {("get", "events"), ("describe", "events"), ("diagnose", "events"),
                ("get", "top"), ("rollout-status", "diagnose")}
_ONLY_OK = "|".join(sorted(ACTION_VERBS | {"just", "the", "names?", "a", "one"}))
_CONDITION = re.compile(
    r"(?<![\w-])(?:but\s+only|only\s+(?:if|when|where|those|ones?|after|before|for|on|with|that|"
    r"in)\b|only\s+(?!(?:" + _ONLY_OK + r")\b)[a-z]+|except|excluding|exclude|unless|other\s+than|"
    r"but\s+not|as\s+long\s+as|provided\s+(?:that|it)|if\s+(?:it|they|the|there|its|their|any|no|"
    r"not)|when(?:ever)?\s+(?:it|they|the)|without\s+(?:touching|deleting|evicting|affecting|the|"
    r"its|waiting))(?![\w-])", re.I)
# Comparisons the extractor reads where a slot takes them ("at most 6 replicas"); unread, refused.
_COMPARE = re.compile(
    r"(?<![\w-])(?:at\s+most|at\s+least|no\s+more\s+than|fewer\s+than|more\s+than|older\s+than|"
    r"newer\s+than|sorted\s+by|sort\s+by|ordered\s+by|order\s+by|grouped\s+by|per\s+node|"
    r"every\s+\d+)(?![\w-])", re.I)
# Every namespace at once: each card acts in one namespace (guardrail 2 refuses -A on changes).
_SCOPE = re.compile(r"(?<![\w-])(?:(?:all|every|each|any)\s+(?:of\s+the\s+)?namespaces?|across\s+"
                    r"(?:all\s+)?(?:the\s+)?namespaces|all-namespaces|-A|cluster[\s-]wide)(?![\w-])",
                    re.I)
_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*(?:=\S+)?)")
_KEY_VALUE = re.compile(r"(?<![\w-])([\w./-]+[=:][\w./:-]*)")
_NUMBER_LIKE = re.compile(r"(?<![\w.-])(\d+(?:\.\d+)?(?:[a-zA-Z]{1,3}|%)?)(?![\w-])")
_PATH = re.compile(r"(?<![\w-])((?:~|\.{1,2})?/[\w./-]+|[\w.-]+\.(?:ya?ml|json|txt|sh|tar|gz|conf))"
                   r"(?![\w-])")
_IDENT = re.compile(r"(?<![\w./:=-])([a-z0-9]+(?:[-.][a-z0-9]+)+|[a-z]+\d+[a-z0-9]*)(?![\w/:=-])",
                    re.I)
_QUOTED = re.compile(r"\"[^\"]+\"|'[^']+'")


_ALL_PARTS = (_QUOTED, _CONDITION, _COMPARE, _FLAG, OPTION_RE, OTHER_KIND_RE, _PATH, _KEY_VALUE,
              _NUMBER_LIKE, _IDENT)
# The parts no card slot ever reads: refused before planning, whatever the card.
_NEVER_READ = (_CONDITION, _COMPARE, _FLAG, OPTION_RE, OTHER_KIND_RE)


def _leftovers(ex: Extraction, classes: tuple[re.Pattern[str], ...] = _ALL_PARTS
               ) -> list[tuple[re.Pattern[str], str]]:
    """The meaningful parts of the text no stage read: flags, key=value, numbers, paths,
    identifiers, quoted strings and conditions. Plain English words are filler."""
    parts: list[tuple[int, re.Pattern[str], str]] = []
    for offset, chunk in ex.unread_text():
        taken: list[tuple[int, int]] = []
        for rx in _ALL_PARTS:
            for m in rx.finditer(chunk):
                if any(a < m.end() and m.start() < b for a, b in taken):
                    continue
                word = m.group(0).strip(".,:;!?")
                if rx is _IDENT and word.lower() in STOPWORDS:
                    continue
                if rx is _NUMBER_LIKE and re.fullmatch(r"\d+", word) is None and \
                        word.lower() in STOPWORDS:
                    continue
                taken.append(m.span())
                if rx in classes:
                    parts.append((offset + m.start(), rx, word))
    # A condition's span is read by the extractor when it holds a value ("only pods labelled
    # app=batch" gives a selector): the condition word itself still needs a card that honours it.
    if _CONDITION in classes:
        for m in _CONDITION.finditer(ex.text):
            if any(a <= m.start() < b for a, b in ex.conditions):
                continue  # a slot's value stands for it (current_replicas): its card honours it
            if not any(off <= m.start() < off + len(chunk) for off, chunk in ex.unread_text()):
                parts.append((m.start(), _CONDITION, m.group(0)))
    parts.sort(key=lambda p: p[0])
    return [(rx, w) for _, rx, w in parts]


_OPTION_SPELLING = {"forcefully": "force", "timestamp": "timestamps", "prefixed": "prefix",
                    "sorted": "sort-by", "sort": "sort-by", "overwriting": "overwrite",
                    "streaming": "follow", "stream": "follow", "keep-streaming": "follow",
                    "continuously": "follow", "every-namespace": "all-namespaces"}


def option_flag(part: str) -> str | None:
    """The kubectl flag a flag or option word of the words stands for ("all containers" ->
    --all-containers), or None for other parts."""
    if part.startswith("-"):
        return part.split("=", 1)[0]
    if OPTION_RE.fullmatch(part):
        word = re.sub(r"[\s-]+", "-", part.lower())
        return "--" + _OPTION_SPELLING.get(word, word)
    return None


def honoured_flags(ex: Extraction) -> set[str]:
    """The kubectl flags the words ask for that no stage read (a card may carry them fixed)."""
    flags = {option_flag(part) for rx, part in _leftovers(ex, (_FLAG, OPTION_RE))}
    return {f for f in flags if f}


_SECONDS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60,
            "minute": 60, "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600}
# A value read for one slot that the cards of the intent name another way.
_SLOT_ALIASES = {"selector": "pod_selector"}


def bind_options(ex: Extraction, corpus: Corpus) -> Extraction:
    """The extraction with the kubectl options the words name bound to the slots of the intent's
    cards that take them: `--force` / "force" -> force=true, "grace period of 0" -> grace_period,
    `--timeout=5m` -> timeout=300 where a card has such a slot. Unbound options stay unread (and
    are refused by name)."""
    if ex.intent is None:
        return ex
    cards = corpus.matching(ex.intent, ex.resource if ex.resource_explicit else None) or \
        corpus.matching(ex.intent)
    specs = {slot: spec for c in cards for slot, spec in c.placeholders.items()}
    params = dict(ex.params)
    taken: list[tuple[int, int]] = []
    for offset, chunk in ex.unread_text():
        for rx in (_FLAG, OPTION_RE):
            for m in rx.finditer(chunk):
                flag = option_flag(m.group(0))
                slot = flag[2:].replace("-", "_") if flag else None
                spec = specs.get(slot) if slot else None
                if spec is None or slot in params:
                    continue
                given = m.group(0).split("=", 1)[1] if "=" in m.group(0) else None
                end = m.end()
                if given is None and spec.type != "bool":
                    after = re.match(r"\s*(?:of\s+|to\s+|=\s*)?(\d+)\s*([a-z]+)?", chunk[m.end():])
                    if after:
                        given = after.group(1) + (after.group(2) or "")
                        end = m.end() + after.end()
                value: Any
                if spec.type == "bool":
                    value = (given or "true").lower() not in ("false", "0", "no")
                elif spec.type == "int" and given is not None:
                    q = re.fullmatch(r"(\d+)\s*([a-z]*)", given.lower())
                    if not q or (q.group(2) and q.group(2) not in _SECONDS):
                        continue
                    value = int(q.group(1)) * (_SECONDS.get(q.group(2), 1) if slot in (
                        "timeout", "grace_period") else 1)
                elif given:
                    value = given
                else:
                    continue
                params[slot] = value
                taken.append((offset + m.start(), offset + end))
    for src, dst in _SLOT_ALIASES.items():
        if src in params and dst in specs and src not in specs:
            params[dst] = params.pop(src)
    if params == ex.params:
        return ex
    unread = []
    for a, b in ex.unread:
        cuts = sorted((max(a, x), min(b, y)) for x, y in taken if x < b and a < y)
        pos = a
        for x, y in cuts:
            if pos < x:
                unread.append((pos, x))
            pos = max(pos, y)
        if pos < b:
            unread.append((pos, b))
    return replace(ex, params=params, unread=tuple(unread))


def _card_has(card: Card, flag: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", card.command_template) is not None


def _cards_phrase(ex: Extraction, corpus: Corpus) -> str:
    """"drain-node does not" / "logs-pod, logs-deployment do not" / "no command card does not"."""
    if ex.intent is None:
        return "no command card would"
    cards = corpus.matching(ex.intent, ex.resource if ex.resource_explicit else None) or \
        corpus.matching(ex.intent)
    ids = [c.id for c in cards][:4]
    if not ids:
        return f"no {ex.intent} card would"
    return f"{ids[0]} does not" if len(ids) == 1 else f"{', '.join(ids)} do not"


def _other_kind(part: str) -> str | None:
    """The kind an OTHER_KIND_RE match names ("replication controllers" -> replicationcontroller)."""
    word = re.sub(r"[\s-]+", " ", part.lower())
    for candidate in (word, word.removesuffix("es"), word.removesuffix("s")):
        if candidate in OTHER_KINDS:
            return OTHER_KINDS[candidate]
        if candidate.replace(" ", "") in OTHER_KINDS:
            return OTHER_KINDS[candidate.replace(" ", "")]
    return None


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a).lower() == str(b).lower()


def check_plan(request: Request, ex: Extraction, plan: Plan, corpus: Corpus) -> None:
    """After planning free text: the plan's action and values are the words' own, and nothing
    meaningful in the words is left out. Raises InvalidRequest or NoMatch naming the part."""
    card: Card | None = corpus.by_id.get(plan.card_id) if plan.card_id else None
    if card is None:
        return
    if ex.intent is not None and card.intent != ex.intent and \
            (ex.intent, card.intent) not in _SAME_ACTION:
        raise NoMatch(f"the words ask to {ex.intent}, but the only plan found ({card.id}) would "
                      f"{card.intent}; nothing was planned")
    own_values = [s for s in card.placeholders if s not in ("name", "namespace") and s in ex.params]
    if ex.intent is None and card.mutating and not request.params and not own_values:
        # Without an action word a changing card is the words' only when they give a value
        # only it takes ("shrink worker to 1 replica", "... to image app:2"), as in schema.py.
        raise NoMatch(f"the words name no action, and {card.id} changes the cluster: a changing "
                      "command is planned only when the words ask for it; say what to do")
    takes = ", ".join(s for s in card.placeholders if s not in ("name", "namespace")) or "nothing else"
    for slot, value in ex.slots().items():
        if slot == "resource":
            continue
        if slot == "namespace" and "namespace" not in card.placeholders:
            continue  # a cluster-scoped card: kubectl has no namespace for it to drop
        if slot in card.placeholders and slot in plan.slots and _same(plan.slots[slot], value):
            continue
        if slot in plan.slots:
            raise InvalidRequest(_field(slot), f"the words give {slot} {_quote(str(value))}, the "
                                 f"plan {_quote(str(plan.slots[slot]))}; nothing was planned")
        raise InvalidRequest(_field(slot), f"cannot honour {slot} {_quote(str(value))}: "
                             f"{card.id} does not take it (it takes: {takes})")
    if plan.planner == "mlx":
        _model_values_are_the_words(request, ex, plan, card)
    argv_flags = {a.split("=", 1)[0] for a in plan.argv}
    for rx, part in _leftovers(ex):
        if any(_same(part, v) for v in plan.slots.values()):
            continue
        flag = option_flag(part) if rx in (_FLAG, OPTION_RE) else None
        if flag and flag in argv_flags and (not part.startswith("-") or part in plan.argv
                                             or "=" not in part):
            continue  # the card carries it ("--force" on drain-node-force)
        raise InvalidRequest("query", f"cannot honour {_quote(part)}: {card.id} has no slot for it "
                             f"(it takes: {takes}); nothing was planned")
    if ex.resource_explicit and ex.resource and card.resource not in (ex.resource, "*") and \
            card.intent not in ("drain", "cordon", "uncordon") and \
            card.resource not in ex.kinds and \
            not (card.intent == "events" and ex.resource in ("event",)) and \
            ex.resource not in ("event",):
        raise InvalidRequest("resource", f"the words name a {ex.resource}, but {card.id} acts on "
                             f"{card.resource}; nothing was planned")



def _model_values_are_the_words(request: Request, ex: Extraction, plan: Plan, card: Card) -> None:
    """A value the model chose (not the request's, not the extractor's) must be a part of the text
    that nothing else read, and a word that can be a value at all: never the action word, a kind,
    or plain English ("drain node-3" is no `--pod-selector=drain`, "with image x" no image `image`)."""
    from .extract import is_candidate_name

    given = {k: v for k, v in (("name", request.name), ("namespace", request.namespace))
             if v is not None}
    given.update(request.params)
    read = ex.slots()
    unread = " ".join(part.lower() for _, part in ex.unread_text())
    for slot, value in plan.slots.items():
        if slot in given or slot == "timeout" or not isinstance(value, str) or \
                slot not in card.placeholders:
            continue
        if slot in read and _same(read[slot], value):
            continue
        word = value.lower()
        words = re.findall(r"[a-z0-9][a-z0-9._/:=-]*", word)
        if word not in unread or any(not is_candidate_name(w) for w in words if w.isalpha()):
            raise InvalidRequest(_field(slot), f"the model filled {slot} with {_quote(value)}, which "
                                 "the words do not give as a value; nothing was planned")
    # Numbers the model placed itself: each must be a number of the words nothing else read, and
    # it must be the only one, else which number is which slot is the model's guess ("if it has
    # 2 replicas now, scale it to 3" planned as --current-replicas=3 --replicas=2).
    numbers = sorted(set(re.findall(r"(?<![\w.-])\d+(?![\w.])", unread)), key=int)
    for slot, value in plan.slots.items():
        if slot in given or slot == "timeout" or slot not in card.placeholders or \
                isinstance(value, bool) or not isinstance(value, int):
            continue
        if slot in read and _same(read[slot], value):
            continue
        if str(value) not in numbers:
            raise InvalidRequest(_field(slot), f"the model filled {slot} with {value}, which the "
                                 "words do not give; nothing was planned")
        if len(numbers) > 1:
            raise InvalidRequest(_field(slot), f"the words give {len(numbers)} numbers "
                                 f"({', '.join(numbers)}) and do not say which is {slot}; "
                                 "nothing was planned")


def _field(slot: str) -> str:
    from ..cards import request_field

    return request_field(slot) if slot not in ("name", "namespace") else slot
