"""Free-text slot extraction: intent, resource, namespace, name and params from a plain request.

Deterministic and conservative: it reads the phrasings people use ("bounce the api deployment in
prod", "last 50 lines of pod web-1", "scale api to 3") and leaves a slot empty rather than guess.
Nothing here is trusted: every value is validated again by the request schema and the card renderer,
so hostile text can only ever become an `invalid` result, never an argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..vocab import RESOURCE_ALIASES
from .lexicon import INSERT_BEFORE, NEW_INTENT_PATTERNS

# A Kubernetes name as it appears in text; the boundaries let a sentence's final "." go.
_NAME = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
# Shell punctuation glued to a word ("api;rm") makes it no name at all, rather than a shortened one.
_B = r"(?<![\w./:=@;|&$`<>(){}\\-])"
_E = r"(?![\w/:=@;|&$`<>(){}\\-]|\.\w)"
_TOKEN_RE = re.compile(_B + r"(" + _NAME + r")" + _E, re.I)
_IMAGE_RE = re.compile(
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
_SEL_TERM = r"!?(?:[a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]*(?:(?:=|==|!=)[-A-Za-z0-9_.]*)?"
_SELECTOR = _SEL_TERM + r"(?:," + _SEL_TERM + r")*"

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
}
# A number standing alone: the "0" of "worker-0" is part of a name.
# A number standing alone: not the 10 of "10m", the 0 of "worker-0" or the 1 of "1.27".
NUMBER = r"(?<![\w.-])(\d+|" + "|".join(NUMBER_WORDS) + r")(?![\w-]|\.\w)"
_NUM = NUMBER

_CAN_I_VERBS = {
    "get": "get", "read": "get", "see": "get", "view": "get", "look at": "get", "list": "list",
    "watch": "watch", "create": "create", "make": "create", "add": "create", "update": "update",
    "edit": "update", "modify": "update", "change": "update", "patch": "patch", "scale": "patch",
    "delete": "delete", "remove": "delete", "kill": "delete", "deletecollection": "deletecollection",
}
_CAN_I_VERB_RE = "|".join(sorted((re.escape(v) for v in _CAN_I_VERBS), key=len, reverse=True))

# Intent phrasings, in priority order: the first intent with a match wins, so the specific
# ("can I delete", "rollout history", "roll back") is tried before the generic ("delete", "show").
# A named group `keep` is left for the slot readers (the node in "take node-3 out for maintenance").
INTENT_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("can-i", (
        r"\b(?:can\s+i|may\s+i|am\s+i\s+(?:allowed|permitted|able)\s+to|who\s+(?:can|is\s+allowed\s+to)"
        r"|do\s+i\s+have\s+(?:the\s+)?(?:permission|rights?|access)\s+to"
        r"|(?:check|see)\s+(?:if|whether)\s+i\s+(?:can|may|am\s+allowed\s+to))\s+"
        r"(?P<verb>" + _CAN_I_VERB_RE + r")\b",
        r"\bauth\s+can-i\s+(?P<verb>" + _CAN_I_VERB_RE + r")\b",
    )),
    ("rollout-history", (
        r"\brollout\s+history\b", r"\brevision\s+history\b", r"\bhistory\s+of\s+(?:the\s+)?rollouts?\b",
        r"\b(?:list|show|see|what\s+are)\s+(?:me\s+)?(?:the\s+|all\s+)?(?:past\s+|previous\s+|old\s+)?"
        r"(?:revisions|rollouts)\b",
        r"\b(?:past|previous)\s+(?:revisions|rollouts)\b", r"\b(?P<keep>deploy(?:ment)?)\s+history\b",
        r"\brevisions\b",
    )),
    ("rollout-status", (
        r"\brollout\s+(?:status|progress)\b", r"\b(?:status|progress)\s+of\s+(?:the\s+)?rollout\b",
        r"\b(?:is|has)\s+the\s+rollout\b", r"\bwatch\s+the\s+rollout\b",
        r"\b(?:still|finished|done|stuck)\s+rolling\s+out\b", r"\brolled\s+out\s+yet\b",
        r"\brollout\s+(?:finished|done|complete|completed)\b",
    )),
    ("rollback", (
        r"\broll\s*-?\s*back\b", r"\brollback\b", r"\brevert\b", r"\bundo\b",
        r"\bgo\s+back\s+to\s+(?:the\s+)?(?:previous|last|prior|revision)\b",
    )),
    ("uncordon", (
        r"\buncordon\b", r"\bmark\s+(?P<keep>.{1,80}?)\s+(?:as\s+)?schedulable\b",
        r"\b(?:re-?enable|allow|resume)\s+scheduling\b", r"\bback\s+into\s+(?:service|rotation)\b",
    )),
    ("cordon", (
        r"\bcordon\b", r"\bunschedulable\b", r"\b(?:stop|disable|prevent|block)\s+(?:new\s+)?"
        r"(?:pods?\s+)?(?:from\s+)?(?:being\s+)?schedul\w*\b",
    )),
    ("drain", (
        r"\bdrain\b", r"\bevacuate\b",
        r"\btake\s+(?P<keep>.{1,80}?)\s+(?:out|down|offline)\s+for\s+maintenance\b",
        r"\b(?:out|down|offline)\s+for\s+maintenance\b", r"\bprepare\b.{1,80}?\bfor\s+maintenance\b",
    )),
    ("autoscale", (
        r"\bauto-?\s?scal(?:e|es|ed|ing)\b",  # not "autoscalers": that names the hpa kind
        r"\b(?:create|add|set\s+up|configure)\s+(?:an?\s+)?(?:hpa|horizontal\s+pod\s+autoscaler)\b",
        r"\bbetween\s+\d+\s+and\s+\d+\s+(?:replicas|pods|instances|copies)\b",
    )),
    ("set-image", (
        r"\bset\s+(?:the\s+)?image\b",
        r"\b(?:update|change|bump|switch|upgrade|move)\s+(?:the\s+)?(?:container\s+)?image\b",
        r"\bdeploy\s+(?:the\s+)?(?:version|image|release|tag)\b",
        r"\b(?:update|upgrade|bump|switch|move|roll\s+out)\b(?=.{0,120}\bto\s+[a-z0-9./-]+(?::[A-Za-z0-9]|@sha256))",
        r"\bimage\s+to\b",
    )),
    ("scale", (
        r"\bscale\b", r"\bscale\s+(?:up|down|out|in)\b", r"\bresize\b",
        r"\b(?:set|change|bump|increase|decrease|reduce)\s+(?:the\s+)?(?:replicas|replica\s+count)\b",
    )),
    ("restart", (
        r"\brestart\b", r"\brolling\s+restart\b", r"\bbounce\b", r"\bcycle\b", r"\bkick\b",
        r"\brecycle\b", r"\bredeploy\b", r"\breload\b",
    )),
    ("delete", (
        r"\bdelete\b", r"\bkill\b", r"\bremove\b", r"\bdestroy\b", r"\bterminate\b", r"\bnuke\b",
        r"\bget\s+rid\s+of\b", r"\bclean\s+up\b",
    )),
    ("logs", (
        r"\blogs?\b", r"\blogged\b", r"\btail\b", r"\blog\s+(?:output|lines)\b", r"\bstdout\b",
    )),
    ("events", (
        r"\bevents?\b", r"\bwhat\s+happened\b",
    )),
    ("diagnose", (
        r"\bdiagnos\w*\b", r"\btroubleshoot\w*\b", r"\bdebug\b", r"\bwhy\s+(?:is|are|does|do|did|won't|isn't)\b",
        r"\bwhat(?:'s|\s+is)\s+wrong\b", r"\bfailing\b", r"\bcrash\s*-?\s*loop\w*\b",
        r"\bcrashing\b", r"\bkeeps?\s+(?:restarting|crashing|dying)\b", r"\bunhealthy\b",
        r"\bnot\s+(?:ready|starting|healthy|working)\b", r"\bbroken\b", r"\bstuck\b",
        r"\bhealth\s*check\b", r"\bhealth\s+of\b",
    )),
    ("top", (
        r"\btop\b", r"\b(?:cpu|memory|mem|resource)\s+(?:usage|consumption|use)\b",
        r"\bhow\s+much\s+(?:cpu|memory|ram)\b", r"\b(?:using|use|eating|consuming)\s+(?:the\s+)?most\b",
        r"\bresource\s+hogs?\b",
    )),
    ("describe", (
        r"\bdescribe\b", r"\bdetails?\b", r"\binspect\b", r"\btell\s+me\s+(?:everything\s+)?about\b",
        r"\bfull\s+(?:info|information|description)\b",
    )),
    ("get", (
        r"\bget\b", r"\blist\b", r"\bshow\b", r"\bdisplay\b", r"\bwhat\s+(?:are|is)\s+running\b",
        r"\bwhich\b", r"\bwhat\b", r"\benumerate\b", r"\bfind\b", r"\bfetch\b", r"\bretrieve\b",
        r"\bgive\s+me\b", r"\bprint\b",
    )),
    # A count of replicas with no action word asks to scale; any action word said wins over it
    # ("restart api if it has 3 replicas" is a restart, with a condition no card honours).
    ("scale", (
        r"(?<![\w.-])(?=\d+\s+(?:replicas|instances|copies)\b)",  # zero-width: the number is read later
    )),
)


def _with_new_intents(old: tuple[tuple[str, tuple[str, ...]], ...]
                      ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The old intents' phrasings with lexicon.NEW_INTENT_PATTERNS merged in at their priority."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for intent, patterns in old:
        out += [n for n in NEW_INTENT_PATTERNS if INSERT_BEFORE[n[0]] == intent and n not in out]
        out.append((intent, patterns))
    return tuple(out)


INTENT_PATTERNS = _with_new_intents(INTENT_PATTERNS)
_INTENT_RES = tuple((i, tuple(re.compile(p, re.I) for p in ps)) for i, ps in INTENT_PATTERNS)

# Bare aliases too common as English words to be read as kinds ("no", "ev", "ing").
_UNSAFE_BARE = {"no", "ev", "ing"}
_MULTIWORD_KINDS = {
    "persistent volume claims": "pvc", "persistent volume claim": "pvc", "volume claims": "pvc",
    "volume claim": "pvc", "horizontal pod autoscalers": "hpa", "horizontal pod autoscaler": "hpa",
    "autoscalers": "hpa", "autoscaler": "hpa", "cron jobs": "cronjob", "cron job": "cronjob",
    "config maps": "configmap", "config map": "configmap", "stateful sets": "statefulset",
    "stateful set": "statefulset", "daemon sets": "daemonset", "daemon set": "daemonset",
    "replica sets": "replicaset", "replica set": "replicaset", "ingress rules": "ingress",
}
_KIND_WORDS: dict[str, str] = dict(_MULTIWORD_KINDS)
for _kind, _aliases in RESOURCE_ALIASES.items():
    for _word in (_kind, *_aliases):
        if _word not in _UNSAFE_BARE:
            _KIND_WORDS[_word] = _kind
_KIND_RE = re.compile(
    _B + r"(" + "|".join(re.escape(w).replace(r"\ ", r"\s+")
                         for w in sorted(_KIND_WORDS, key=len, reverse=True)) + r")" + _E, re.I
)
_SLASH_ALIASES = {w: k for k, al in RESOURCE_ALIASES.items() for w in (k, *al)}
_KIND_SLASH_RE = re.compile(
    _B + r"(" + "|".join(re.escape(w) for w in sorted(_SLASH_ALIASES, key=len, reverse=True))
    + r")/(" + _NAME + r")" + _E, re.I
)

# Words that are never a resource's name or a namespace.
STOPWORDS = frozenset("""
a an the my our your their this that these those it its all any every each some one me us you i
in on of for from to with by at as into onto within inside across over under about and or but not
please now then also just only again currently current latest last new old next previous prior
is are was were be been being do does did has have had will would can could should may might must
named called name namespace namespaces ns there here what which who whom why how when where
running failing pending crashing crashlooping crashloop crashloopbackoff broken stuck healthy
unhealthy ready status state logs log events event lines line image images version versions
revision revisions history rollout rollouts replicas replica instances copies label labels
selector container containers previous output yaml json wide cluster everything anything
something nothing up down out back so too very more most less least minutes minute hours hour
seconds second days day ago since past recent recently maintenance service-wide usage cpu
memory mem percent top details detail info information kubectl kube please thanks thank ok okay
restart restarts restarting bounce cycle kick recycle redeploy reload delete kill remove destroy
terminate nuke get list show display describe inspect scale resize drain evacuate cordon
uncordon rollback revert undo set update change bump switch upgrade move deploy tail watch
diagnose troubleshoot debug check see view find tell take make create add allowed permitted
exist exists existing available deployed defined configured look looks like mark put bring go
let lets give want need help whole entire right-now currently
able permission permissions access rights happened wrong between target schedulable
if unless except whether than else
unschedulable scheduling keep keeps going going-on sure quickly safely safe right off onto
kubeconfig
""".split())


@dataclass(frozen=True)
class Extraction:
    """What the text says; `None` where it says nothing. Values are not yet validated."""

    intent: str | None = None
    resource: str | None = None
    # True when the text names the kind ("deployment", "deploy/api") or the intent allows one kind.
    resource_explicit: bool = False
    namespace: str | None = None
    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Every kind the text names, in order ("the notifications service deployment" names two).
    kinds: tuple[str, ...] = ()
    # The text read, and the spans of it no stage took: what the faithfulness check accounts for.
    text: str = field(default="", compare=False)
    unread: tuple[tuple[int, int], ...] = field(default=(), compare=False)
    # True when no action word was read and `intent` is the reading a bare kind implies ("get").
    intent_implied: bool = False
    # Condition words read as part of a slot's value ("only if it has 3" -> current_replicas):
    # the slot stands for the condition, so a card that takes the slot honours it.
    conditions: tuple[tuple[int, int], ...] = field(default=(), compare=False)

    def unread_text(self) -> list[tuple[int, str]]:
        """The parts of the text no stage read, with their offsets."""
        return [(a, self.text[a:b]) for a, b in self.unread]

    def slots(self) -> dict[str, Any]:
        """The extracted values keyed by slot name (the request's own field names)."""
        out: dict[str, Any] = {
            k: v for k, v in (("name", self.name), ("namespace", self.namespace),
                              ("resource", self.resource)) if v is not None
        }
        out.update(self.params)
        return out


class _Scanner:
    """The text with the spans already read marked taken, so no word is read twice."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.taken = [False] * len(text)

    def free(self, start: int, end: int) -> bool:
        return not any(self.taken[start:end])

    def take(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.taken[i] = True

    def untake(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.taken[i] = False

    def matches(self, pattern: re.Pattern[str] | str) -> Iterator[re.Match[str]]:
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.I)
        for m in rx.finditer(self.text):
            if self.free(*m.span()):
                yield m

    def first(self, pattern: re.Pattern[str] | str) -> re.Match[str] | None:
        return next(self.matches(pattern), None)

    def unread(self) -> tuple[tuple[int, int], ...]:
        """The maximal spans not taken."""
        spans: list[tuple[int, int]] = []
        start = None
        for i, t in enumerate([*self.taken, True]):
            if not t and start is None:
                start = i
            elif t and start is not None:
                spans.append((start, i))
                start = None
        return tuple(spans)

    def tokens(self) -> list[tuple[int, int, str]]:
        """Name-shaped words with their spans (taken ones included; callers check)."""
        return [(m.start(1), m.end(1), m.group(1).lower()) for m in _TOKEN_RE.finditer(self.text)]


def _number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word.lower()]


def _duration(amount: str, unit: str) -> str | None:
    n = 1 if amount.lower() in ("a", "an", "one", "the") else _number(amount)
    u = unit.lower()
    if u.startswith("d"):
        return f"{n * 24}h"
    if u.startswith("h"):
        return f"{n}h"
    if u.startswith("m"):
        return f"{n}m"
    if u.startswith("s"):
        return f"{n}s"
    return None


def _flag(name: str, value: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + name + r"(?:=|\s+)(" + value + r")" + _E, re.I)


def is_candidate_name(word: str) -> bool:
    """Whether a lower-case word could be a name: not English, kubectl vocabulary or a number."""
    return (word not in STOPWORDS and not word.isdigit() and word not in _KIND_WORDS
            and word not in NUMBER_WORDS)



@dataclass
class _Reading:
    """What the stages of `extract` have read so far, over one scanner."""

    s: _Scanner
    params: dict[str, Any] = field(default_factory=dict)
    namespace: str | None = None
    name: str | None = None
    resource: str | None = None
    explicit: bool = False
    intent: str | None = None
    implied: bool = False
    bare_ns_form: bool = False
    tokens: list[tuple[int, int, str]] = field(default_factory=list)
    named_kinds: tuple[str, ...] = ()
    conditions: list[tuple[int, int]] = field(default_factory=list)


def extract(text: str) -> Extraction:
    """Read intent, resource, namespace, name and params from free text, stage by stage: each
    stage reads what it can and marks it taken, so a later, looser stage never reads it again."""
    r = _Reading(_Scanner(text))
    for stage in _STAGES:
        stage(r)
    return Extraction(intent=r.intent, resource=r.resource, resource_explicit=r.explicit,
                      namespace=r.namespace, name=r.name, params=r.params, kinds=r.named_kinds,
                      text=text, unread=r.s.unread(), intent_implied=r.implied,
                      conditions=tuple(r.conditions))


def _read_flags(r: _Reading) -> None:
    """kubectl-style flags, the least ambiguous spelling."""
    for rx, key, conv in (
        (_flag(r"(?:-n|--namespace)", _NAME), "namespace", str.lower),
        (re.compile(r"\b(?:namespace|ns)=(" + _NAME + r")" + _E, re.I), "namespace",
         str.lower),
        (_flag(r"(?:-l|--selector)", _SELECTOR), "selector", str),
        (_flag(r"(?:-o|--output)", r"wide|yaml|json|name"), "output", str.lower),
        (_flag(r"--replicas", r"\d+"), "replicas", int),
        (_flag(r"--tail", r"\d+"), "tail", int),
        (_flag(r"--since", r"\d+[smh]"), "since", str.lower),
        (_flag(r"(?:-c|--container)", _NAME), "container", str.lower),
        (_flag(r"--to-revision", r"\d+"), "to_revision", int),
        (_flag(r"--min", r"\d+"), "min", int),
        (_flag(r"--max", r"\d+"), "max", int),
        (_flag(r"--cpu-percent", r"\d+"), "cpu_percent", int),
    ):
        m = r.s.first(rx)
        if m:
            value: Any = conv(m.group(1))
            if key == "namespace":
                r.namespace = value
            else:
                r.params[key] = value
            r.s.take(*m.span())
    m = r.s.first(r"(?<![\w-])(?:--previous|-p)(?![\w-])")
    if m:
        r.params["previous"] = True
        r.s.take(*m.span())


def _read_kind_slash(r: _Reading) -> None:
    """kind/name ("deploy/api", "pod/web-1")."""
    m = r.s.first(_KIND_SLASH_RE)
    if m:
        r.resource, r.name, r.explicit = _SLASH_ALIASES[m.group(1).lower()], m.group(2).lower(), True
        r.s.take(*m.span())


def _read_intent(r: _Reading) -> None:
    """The intent, by priority; a can-i verb is read with it."""
    r.intent = None
    for candidate, patterns in _INTENT_RES:
        for rx in patterns:
            m = r.s.first(rx)
            if m is None:
                continue
            r.intent = candidate
            r.s.take(*m.span())
            if "keep" in rx.groupindex and m.group("keep"):
                r.s.untake(*m.span("keep"))
            if "verb" in rx.groupindex:
                r.params["verb"] = _CAN_I_VERBS[re.sub(r"\s+", " ", m.group("verb").lower())]
            break
        if r.intent:
            break


def _read_pairs(r: _Reading) -> None:
    """The key=value pairs and `key-` removals of label, annotate, set-env and taint, read before
    the looser value readers could take them for a selector or an image."""
    kv = r"([A-Za-z0-9][\w./-]*)=([\w./:@-]*)"
    if r.intent in ("label", "annotate"):
        slot = "labels" if r.intent == "label" else "annotations"
        # The removal words may be the intent's own span ("remove the label"): read the key after
        # them from the whole text, and take only the key.
        remove = re.compile(r"\b(?:remove|delete|drop|strip|unset|take)\s+(?:the\s+)?(?:label|annotation)s?"
                            r"\s+([A-Za-z0-9][\w./-]*)(?![\w=/-])|(?<![\w-])([A-Za-z0-9][\w./]*)-(?![\w-])")
        for m in remove.finditer(r.s.text):
            g = 1 if m.group(1) else 2
            key = m.group(g)
            if key.lower() in STOPWORDS or not r.s.free(*m.span(g)):
                continue
            r.params.setdefault("remove_" + slot, []).append(key)
            r.s.take(*m.span(g))
        if "remove_" + slot not in r.params:
            for m in r.s.matches(_B + kv + _E):
                r.params.setdefault(slot, {})[m.group(1)] = m.group(2)
                r.s.take(*m.span())
    elif r.intent == "set-env":
        remove = re.compile(r"\b(?:remove|delete|drop|unset)\s+(?:the\s+)?(?:env(?:ironment)?[\s-]*"
                            r"var(?:iable)?s?\s+)?([A-Z_][A-Z0-9_]*)\b|(?<![\w-])([A-Z_][A-Z0-9_]*)-(?![\w-])")
        for m in remove.finditer(r.s.text):
            g = 1 if m.group(1) else 2
            if r.s.free(*m.span(g)):
                r.params.setdefault("remove_env", []).append(m.group(g))
                r.s.take(*m.span(g))
        if "remove_env" not in r.params:
            for m in r.s.matches(_B + r"([A-Za-z_][A-Za-z0-9_]*)=(\S*?)" + r"(?=[\s,]|$)"):
                r.params.setdefault("env", {})[m.group(1)] = m.group(2)
                r.s.take(*m.span())
    elif r.intent == "taint":
        taint = r"([A-Za-z0-9][\w./-]*(?:=[\w.-]*)?:(?:NoSchedule|PreferNoSchedule|NoExecute))"
        m = r.s.first(_B + taint + r"-(?![\w-])") or (
            r.s.first(_B + taint + _E) if r.s.first(r"\b(?:remove|delete|drop|take|untaint)\b") else None)
        if m:
            r.params["remove_taint"] = m.group(1)
            r.s.take(*m.span())
        else:
            m = r.s.first(_B + taint + _E)
            if m:
                r.params["taint"] = m.group(1)
                r.s.take(*m.span())


# Value shapes of the slots the newer cards take, each read wherever it stands in the text.
_QTY_SHAPE = r"\d+(?:\.\d+)?(?:m|[KMGTP]i?|k)?"
_QTY = r"(" + _QTY_SHAPE + r")"
_RES_LIST = r"((?:cpu|memory)=" + _QTY_SHAPE + r"(?:,(?:cpu|memory)=" + _QTY_SHAPE + r")?)"
_RES_WORD = {"cpu": "cpu", "memory": "memory", "mem": "memory"}
# What "until it is X" waits for: the condition kubectl's --for takes.
_WAIT_STATES = {
    "ready": "condition=Ready", "available": "condition=Available", "complete": "condition=Complete",
    "completed": "condition=Complete", "finished": "condition=Complete", "done": "condition=Complete",
    "deleted": "delete", "removed": "delete", "gone": "delete",
}
# Field names people say for the common --sort-by JSONPaths.
_SORT_FIELDS = {
    "creation time": ".metadata.creationTimestamp", "creation timestamp": ".metadata.creationTimestamp",
    "creation date": ".metadata.creationTimestamp", "age": ".metadata.creationTimestamp",
    "name": ".metadata.name", "restart count": ".status.containerStatuses[0].restartCount",
    "restarts": ".status.containerStatuses[0].restartCount",
    "capacity": ".spec.resources.requests.storage", "size": ".spec.resources.requests.storage",
}
_JSONPATH = r"(\.[A-Za-z][\w]*(?:\[\d+\]|\.[A-Za-z][\w]*)*)"
# A field selector reads an object's own fields: they begin metadata., spec. or status.
_FIELD_TERM = r"(?:metadata|spec|status|involvedObject)\.[A-Za-z][\w.]*(?:==|!=|=)[\w.-]*"


def _read_resources(r: _Reading) -> None:
    """Requests and limits: `--limits=cpu=200m,memory=512Mi`, "requests cpu=100m", "the cpu limit
    ... to 200m", "limit memory to 512Mi". The resource word may be in the intent's own span."""
    if r.intent not in ("set-resources", "patch"):
        return
    for m in r.s.matches(r"(?<![\w-])(?:--)?(requests?|limits?)(?:\s+(?:of|to|at)\s+|\s*[=:]?\s*)"
                         + _RES_LIST + _E):
        slot = "requests" if m.group(1).lower().startswith("r") else "limits"
        for term in m.group(2).split(","):
            k, v = term.split("=")
            r.params.setdefault(slot, {})[k] = v
        r.s.take(*m.span())
    said = re.compile(r"\b(?P<res>cpu|memory|mem)\s+(?P<kind>limit|request)s?\b"
                      r"|\b(?P<kind2>limit|request)s?\s+(?:(?:of|for|on)\s+)?(?:the\s+)?"
                      r"(?P<res2>cpu|memory|mem)\b",
                      re.I)
    for m in said.finditer(r.s.text):
        res = _RES_WORD[(m.group("res") or m.group("res2")).lower()]
        slot = "limits" if (m.group("kind") or m.group("kind2")).lower() == "limit" else "requests"
        if res in r.params.get(slot, {}):
            continue
        q = next((q for q in r.s.matches(r"(?:\bto|\bat|=|\bof)\s*" + _QTY + r"(?![\w.])")
                  if q.start() >= m.end()), None)
        if q is None:
            continue
        r.params.setdefault(slot, {})[res] = q.group(1)
        r.s.take(*q.span())
        if r.s.free(*m.span()):
            r.s.take(*m.span())


def _read_ports(r: _Reading) -> None:
    """Ports of expose, run and create: `--port=80 --target-port=8080`, "on port 80 to 8080",
    "target port 8000", "container port 8080"."""
    if r.intent not in ("expose", "run", "create"):
        return
    p = r"(\d{1,5})(?![\w.])"
    m = r.s.first(r"(?<![\w-])--target-port[=\s]" + p) or r.s.first(
        r"\b(?:with\s+(?:a\s+|the\s+)?)?target[-\s]port\s+(?:of\s+|=\s*)?" + p)
    if m and r.intent == "expose":
        r.params["target_port"] = int(m.group(1))
        r.s.take(*m.span())
    m = r.s.first(r"(?<![\w-])--port[=\s]" + p) or r.s.first(
        r"\b(?:(?:on|at|with|using|listening\s+on)\s+)?(?:the\s+)?(?:container\s+|service\s+)?port\s+"
        r"(?:of\s+|=\s*)?" + p)
    if m:
        r.params["port"] = int(m.group(1))
        r.s.take(*m.span())
        t = re.compile(r"\s+(?:to|->|forwarding\s+to)\s+"
                       r"(?:(?:the\s+)?(?:container\s+|target\s+)?port\s+)?" + p)
        tm = t.match(r.s.text, m.end())
        if tm and r.intent == "expose" and "target_port" not in r.params:
            r.params["target_port"] = int(tm.group(1))
            r.s.take(*tm.span())


def _read_wait_for(r: _Reading) -> None:
    """What wait waits for: `--for=condition=Ready`, `--for=delete`, "to be ready", "until it is
    available", "is deleted"."""
    if r.intent != "wait":
        return
    m = r.s.first(r"(?<![\w-])--for[=\s](condition=[A-Za-z]+(?:=\w+)?|delete|jsonpath=\S+)(?=\s|$)")
    if m:
        r.params["condition"] = m.group(1)
        r.s.take(*m.span())
        return
    m = r.s.first(r"\b(?:condition\s+|to\s+be(?:come)?\s+|(?:is|are|becomes?|gets?|has\s+been|have\s+been)\s+"
                  r"(?:fully\s+)?)(" + "|".join(_WAIT_STATES) + r")\b")
    if m:
        r.params["condition"] = _WAIT_STATES[m.group(1).lower()]
        r.s.take(*m.span())


def _read_field_path(r: _Reading) -> None:
    """What explain explains: a field path ("pods.spec.containers") or a kind said alone."""
    if r.intent != "explain":
        return
    kinds = "|".join(re.escape(w) for w in sorted(_SLASH_ALIASES, key=len, reverse=True))
    m = r.s.first(_B + r"((?:" + kinds + r")(?:\.[A-Za-z][\w]*)+)" + r"(?![\w/:=@-]|\.\w)")
    if m is None:
        m = r.s.first(_B + r"(" + kinds + r")" + _E)
    if m:
        r.params["field"] = m.group(1)
        r.s.take(*m.span())
        # The word that says what it is ("the pods resource", "the field x.y") is read with it.
        after = re.compile(r"\s+(?:resource|kind|type|object|field)s?\b", re.I).match(r.s.text, m.end())
        before = re.search(r"\b(?:resource|kind|type|field)\s+$", r.s.text[:m.start()], re.I)
        for span in ((m.end(), after.end()) if after else None,
                     (before.start(), m.start()) if before else None):
            if span and r.s.free(*span):
                r.s.take(*span)


def _read_listing(r: _Reading) -> None:
    """How a listing is ordered, filtered and shown: `--sort-by=.path`, "sorted by creation time",
    a field selector (`status.phase=Running`), custom columns (`NAME:.metadata.name`)."""
    if r.intent not in ("get", "top", None):
        return
    m = r.s.first(r"(?<![\w-])--sort-by[=\s]" + _JSONPATH + r"(?![\w.\[])") or r.s.first(
        r"\b(?:sort(?:ed)?|order(?:ed)?)\s+by\s+(?:the\s+|their\s+|its\s+)?" + _JSONPATH + r"(?![\w.\[])")
    if m:
        r.params["sort_by"] = m.group(1)
        r.s.take(*m.span())
    else:
        words = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in
                         sorted([*_SORT_FIELDS, "cpu", "memory"], key=len, reverse=True))
        m = r.s.first(r"\b(?:sort(?:ed)?|order(?:ed)?)\s+by\s+(?:the\s+|their\s+|its\s+)?(" + words
                      + r")(?:\s+usage)?\b")
        if m:
            word = _norm(m.group(1))
            if r.intent == "top":
                if word in ("cpu", "memory"):
                    r.params["sort_by"] = word
                    r.s.take(*m.span())
            elif word in _SORT_FIELDS:
                r.params["sort_by"] = _SORT_FIELDS[word]
                r.s.take(*m.span())
    sel = _FIELD_TERM + r"(?:," + _FIELD_TERM + r")*"
    m = r.s.first(r"(?<![\w-])--field-selector[=\s](" + sel + r")" + _E) or r.s.first(
        r"\b(?:(?:by|with|using)\s+(?:the\s+|a\s+)?)?field[-\s]selector\s+(?:of\s+)?(" + sel + r")" + _E) or \
        r.s.first(_B + r"(" + sel + r")" + _E)
    if m:
        r.params["field_selector"] = m.group(1)
        r.s.take(*m.span())
        # The same filter said in words too ("whose phase is Running") is read with it.
        for term in m.group(1).split(","):
            key, op, value = re.match(r"([\w.]+)(==|!=|=)(.*)", term).groups()
            verb = r"(?:is\s+not|isn't|!=)" if op == "!=" else r"(?:is|=|==|equals?)"
            said = re.escape(key.split(".")[-1]) + r"\s+" + verb + r"\s+" + re.escape(value)
            for w in r.s.matches(r"\b(?:whose|where|with)\s+(?:the\s+|its\s+)?" + said + r"\b"):
                r.s.take(*w.span())
    col = r"[A-Z][A-Z0-9_-]*:" + _JSONPATH.replace("(", "(?:", 1)
    m = r.s.first(r"(?<![\w-])(?:-o\s*|--output[=\s])?custom-columns=(" + col + r"(?:," + col + r")*)" + _E) \
        or r.s.first(r"\b(?:(?:showing\s+|with\s+)?(?:only\s+)?(?:the\s+)?columns?\s+)(" + col
                     + r"(?:,\s*" + col + r")*)" + _E)
    if m and "output" not in r.params:
        r.params["output"] = "custom-columns=" + re.sub(r",\s+", ",", m.group(1))
        r.s.take(*m.span())


def _read_literals(r: _Reading) -> None:
    """The entries of a ConfigMap or Secret being created: `key=value` and `--from-literal=k=v`."""
    if r.intent != "create" or not r.s.first(r"\b(?:config\s*maps?|cm|secrets?)\b"):
        return
    for m in r.s.matches(r"(?<![\w-])(?:--from-literal=)?([A-Za-z0-9_][\w.-]*)=([\w./:@-]*)" + _E):
        r.params.setdefault("literals", {})[m.group(1)] = m.group(2)
        r.s.take(*m.span())


def _read_plain_image(r: _Reading) -> None:
    """An image named as one with no tag: "with image busybox", "running image nginx", `--image=x`.
    Not for run: its card fixes --restart=Never, which a request for a plain pod never says, so
    an untagged run stays unplanned rather than become a different pod (tagged images still read)."""
    if r.intent not in ("create", "set-image") or "image" in r.params:
        return
    m = r.s.first(r"(?<![\w-])--image[=\s](" + _IMAGE_RE.pattern + r")" + _E) or r.s.first(
        r"\b(?:(?:with|using|from|running|of)\s+(?:the\s+)?)?image\s+(" + _IMAGE_RE.pattern + r")" + _E)
    if m and m.group(1).lower() not in STOPWORDS:
        r.params["image"] = m.group(1)
        r.s.take(*m.span())


def _read_shapes(r: _Reading) -> None:
    """The value shapes of the newer cards, read before the looser selector and image readers."""
    for reader in (_read_resources, _read_ports, _read_wait_for, _read_field_path, _read_listing,
                   _read_literals, _read_plain_image):
        reader(r)


def _read_numbers(r: _Reading) -> None:
    """Numbers with their words, most specific first."""
    m = r.s.first(r"\bbetween\s+" + _NUM + r"\s+and\s+" + _NUM + r"(?:\s+(?:replicas|pods|instances|copies))?\b")
    if m is None and r.intent == "autoscale":
        m = r.s.first(r"\bfrom\s+" + _NUM + r"\s+to\s+" + _NUM + r"(?:\s+(?:replicas|pods|instances|copies))?\b")
    if m:
        r.params.setdefault("min", _number(m.group(1)))
        r.params.setdefault("max", _number(m.group(2)))
        r.s.take(*m.span())
    for key, rx in (
        ("min", r"\b(?:min(?:imum)?|at\s+least)\s+(?:of\s+)?" + _NUM + r"(?:\s+(?:replicas|pods))?\b"),
        ("max", r"\b(?:max(?:imum)?|at\s+most|up\s+to)\s+(?:of\s+)?" + _NUM + r"(?:\s+(?:replicas|pods))?\b"),
        ("cpu_percent", r"\b(\d+)\s*(?:%|percent)\s*(?:of\s+)?(?:cpu|cpu\s+utili[sz]ation|cpu\s+usage)\b"),
        ("cpu_percent", r"\bcpu\s+(?:utili[sz]ation\s+|usage\s+|target\s+)?(?:at\s+|of\s+|=\s*)?(\d+)\s*(?:%|percent)"),
        ("cpu_percent", r"\btarget(?:ing)?\s+(\d+)\s*(?:%|percent)"),
    ):
        if key in r.params or (key in ("min", "max") and r.intent != "autoscale"):
            continue
        m = r.s.first(rx)
        if m:
            r.params[key] = _number(m.group(1))
            r.s.take(*m.span())
    m = r.s.first(r"\b(?:to\s+)?(?:revision|rev)\s*#?\s*(\d+)\b")
    if m and "to_revision" not in r.params:
        r.params["to_revision"] = int(m.group(1))
        r.s.take(*m.span())
    m = r.s.first(r"\b(?:last|latest|final|first)?\s*(\d+)\s+(?:log\s+)?lines?\b") or r.s.first(
        r"\btail\s+(?:of\s+)?(\d+)\b")
    if m and "tail" not in r.params:
        r.params["tail"] = int(m.group(1))
        r.s.take(*m.span())
    for rx in (
        r"\b(?:in\s+the\s+|for\s+the\s+|over\s+the\s+|during\s+the\s+)?(?:last|past|previous)\s+"
        r"(\d+|an?|one|the)?\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b",
        r"\bsince\s+(\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b",
        r"\b(\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\s+ago\b",
    ):
        m = r.s.first(rx)
        if m and "since" not in r.params:
            since = _duration(m.group(1) or "1", m.group(2))
            if since:
                r.params["since"] = since
                r.s.take(*m.span())
            break


def _read_values(r: _Reading) -> None:
    """Image ("container=image" or a tagged reference), container, selector, output."""
    m = r.s.first(_B + r"(" + _NAME + r")=(" + _IMAGE_RE.pattern + r")" + _E)
    if m and (":" in m.group(2) or "@" in m.group(2)):
        r.params.setdefault("container", m.group(1).lower())
        r.params["image"] = m.group(2)
        r.s.take(*m.span())
    else:
        for m in r.s.matches(_B + r"(" + _IMAGE_RE.pattern + r")" + _E):
            ref = m.group(1)
            # A tag or digest tells an image from a plain name.
            if re.search(r":[A-Za-z0-9_][A-Za-z0-9_.-]*$|@sha256:", ref) and not ref.isdigit():
                r.params["image"] = ref
                r.s.take(*m.span())
                break
    if "container" not in r.params:
        m = r.s.first(r"\bcontainer\s+(?:named\s+|called\s+)?(" + _NAME + r")" + _E)
        if m and is_candidate_name(m.group(1).lower()):
            r.params["container"] = m.group(1).lower()
            r.s.take(*m.span())
        else:
            m = r.s.first(_B + r"(" + _NAME + r")\s+container\b")
            if m and is_candidate_name(m.group(1).lower()):
                r.params["container"] = m.group(1).lower()
                r.s.take(*m.span())
    m = r.s.first(r"\b(?:previous|prior|last\s+terminated|crashed|dead)\s+(?:container|instance|run|logs?)\b"
                r"|\bbefore\s+(?:it|the\s+\w+)\s+(?:crashed|restarted|died)\b")
    if m and "previous" not in r.params:
        r.params["previous"] = True
        r.s.take(*m.span())
    if "selector" not in r.params:
        m = r.s.first(r"\b(?:with|having|matching|labell?ed|labels?|selector)\s+(?:the\s+)?"
                    r"(?:labels?\s+|selector\s+)?(" + _SELECTOR + r")" + _E)
        if m and "=" in m.group(1):
            r.params["selector"] = m.group(1)
            r.s.take(*m.span())
        else:
            m = r.s.first(_B + r"((?![.-])[a-z0-9.-]*[a-z0-9]/?[A-Za-z0-9_.-]*!?==?[A-Za-z0-9_.-]+"
                        r"(?:,[A-Za-z0-9_./-]+!?==?[A-Za-z0-9_.-]+)*)" + _E)
            if m:
                r.params["selector"] = m.group(1)
                r.s.take(*m.span())
    if "output" not in r.params:
        for rx in (r"\b(?:as|in)\s+(yaml|json)\b", r"\b(yaml|json|wide)\s+(?:output|format)\b",
                   r"\boutput\s+(?:as\s+|in\s+)?(yaml|json|wide|name)\b", r"\b(wide)\b",
                   r"\b(?:just|only)\s+(?:the\s+)?(name)s\b"):
            m = r.s.first(rx)
            if m:
                r.params["output"] = m.group(1).lower()
                r.s.take(*m.span())
                break


# A count the object must have now, inside a condition: kubectl scale --current-replicas.
_CONDITION = r"\b(?:only\s+)?(?:if|when|provided(?:\s+that)?|as\s+long\s+as)\b"
_STATE = (r"\b(?:has|have|having|runs?|running|is\s+(?:running|at)|currently\s+(?:has|runs?|at|is\s+at))"
          r"\s+(?:exactly\s+|still\s+)?" + _NUM + r"(?:\s+(?:replicas?|pods?|instances?|copies))?"
          r"(?:\s+(?:now|currently|right\s+now|at\s+the\s+moment))?(?![\w-])")


def _read_current_replicas(r: _Reading) -> None:
    """"only if it has 3", "if web runs 2 replicas now": a state verb and a number after a
    condition word are the count it must have now, not the count to scale to. The condition
    word and the state are read; what lies between (the object: "it", "deployment mysql in
    dev") is left to the other readers. A "from N" that repeats that count is read with it."""
    if "current_replicas" in r.params:
        return
    cond = r.s.first(_CONDITION)
    if cond is None:
        return
    state = next((m for m in r.s.matches(_STATE) if m.start() > cond.start()), None)
    if state is None:
        return
    current = _number(state.group(1))
    r.params["current_replicas"] = current
    r.conditions.append(cond.span())
    r.s.take(*cond.span())
    r.s.take(*state.span())
    it = r.s.first(r"(?<=\s)it\b")
    if it is not None and it.start() == cond.end() + 1:
        r.s.take(*it.span())  # "if it has 3": the object itself
    again = r.s.first(r"\bfrom\s+" + _NUM + r"(?![\w-])")
    if again is not None and _number(again.group(1)) == current:
        r.s.take(*again.span())


def _read_replicas(r: _Reading) -> None:
    """Replicas, once the autoscale bounds and revisions are out of the way."""
    if "replicas" not in r.params:
        m = r.s.first(r"\b" + _NUM + r"\s+(?:replicas?|instances?|copies|pods?)\b")
        if m is None and r.intent == "scale":
            m = r.s.first(r"\b(?:to|down\s+to|up\s+to|=)\s*" + _NUM + r"\b") or r.s.first(
                r"\breplicas\s+(?:to\s+|=\s*|of\s+)?" + _NUM + r"\b") or r.s.first(
                r"\b(?:make|set|bring|take)\s+(?:it|them)\s+(?:to\s+)?" + _NUM + r"\b")
            if m is None and r.s.first(r"\bscale\s+(?:it\s+)?down\s+(?:completely|fully)\b|\bto\s+nothing\b"):
                r.params["replicas"] = 0
        if m:
            r.params["replicas"] = _number(m.group(1))
            r.s.take(*m.span())


def _read_namespace(r: _Reading) -> None:
    """Namespace, from the most to the least explicit phrasing."""
    r.bare_ns_form = False
    if r.namespace is None:
        for rx, bare in (
            (r"\b(?:in|from|within|inside|across|for|of|on)\s+(?:the\s+)?(?:namespace|ns)\s*[:=]?\s*(" + _NAME + r")" + _E, False),
            (r"\b(?:in|from|within|inside|across|for|of|on)\s+(?:the\s+)?(" + _NAME + r")\s+(?:namespace|ns)\b", False),
            (r"\b(?:namespace|ns)\s*[:=]\s*(" + _NAME + r")" + _E, False),
            (_B + r"(" + _NAME + r")\s+namespace\b", True),
            (r"\bnamespace\s+(" + _NAME + r")" + _E, True),
            # "in X" before "from X": "logs from api-0 in prod" reads from a pod, in a namespace.
            (r"\b(?:in|within|inside)\s+(" + _NAME + r")" + _E, False),
            (r"\bfrom\s+(" + _NAME + r")" + _E, False),
        ):
            for m in r.s.matches(rx):
                word = m.group(1).lower()
                if is_candidate_name(word):
                    r.namespace, r.bare_ns_form = word, bare
                    r.s.take(*m.span())
                    break
            if r.namespace:
                break


def _read_kinds_and_name(r: _Reading) -> None:
    """Resource words, and the name beside them."""
    r.tokens = r.s.tokens()
    kinds = [m for m in r.s.matches(_KIND_RE)]
    r.named_kinds = tuple(dict.fromkeys(_KIND_WORDS[_norm(k.group(1))] for k in kinds))
    if r.resource is None and kinds:
        chosen = kinds[0]
        if r.intent == "events":
            others = [k for k in kinds if _KIND_WORDS[_norm(k.group(1))] != "event"]
            chosen = others[0] if others else kinds[0]
        r.resource, r.explicit = _KIND_WORDS[_norm(chosen.group(1))], True
        for k in kinds:
            r.s.take(*k.span())
        if r.name is None:
            r.name = _name_beside(r.s, r.tokens, chosen)
    if r.name is None:
        m = r.s.first(r"\b(?:named|called)\s+(" + _NAME + r")" + _E)
        if m and is_candidate_name(m.group(1).lower()):
            r.name = m.group(1).lower()
            r.s.take(*m.span())

    # "delete the foo namespace": the namespace is the object, not the scope.
    if r.bare_ns_form and r.resource is None and r.intent in ("delete", "describe", "get", "create"):
        r.resource, r.name, r.namespace, r.explicit = "namespace", r.namespace, None, True
    if (r.resource == "namespace" and r.intent in ("delete", "describe", "create") and r.name is None
            and r.namespace):
        r.name, r.namespace = r.namespace, None


# Intents about the cluster or the client as a whole: no word of theirs names an object.
_NO_OBJECT = ("api-resources", "api-versions", "version", "cluster-info", "contexts")


def _read_bare_name(r: _Reading) -> None:
    """A name with no kind word: the first free name-shaped word after the intent."""
    if r.name is None and r.intent not in (None, "get", "top", "events", "can-i", *_NO_OBJECT):
        for start, end, word in r.tokens:
            if r.s.free(start, end) and is_candidate_name(word):
                r.name = word
                r.s.take(start, end)
                break


def _settle_kind(r: _Reading) -> None:
    """The kind the name or the intent implies when no word names one; a bare kind asks for the list."""
    if r.resource is None and r.name is not None and (
            _looks_like_pod(r.name) or r.intent == "logs" and re.fullmatch(r"[a-z0-9-]+-\d+", r.name)):
        # A Deployment's pod name, or for logs a StatefulSet's ("api-0"): `kubectl logs NAME`
        # reads a pod.
        r.resource, r.explicit = "pod", True
    if r.intent is None and r.resource is not None and r.explicit and r.name is None and not (
            set(r.params) - {"output", "selector"}):
        # Words that name a kind, no object and no action ("pods in staging") ask for the list.
        r.intent, r.implied = "get", True
    if r.resource is None and r.intent in ("drain", "cordon", "uncordon"):
        r.resource, r.explicit = "node", True
    if r.resource is None and r.intent == "events":
        r.resource, r.explicit = "event", True
    if r.intent == "can-i":
        r.explicit = True  # the one can-i card covers every kind


_STAGES = (_read_flags, _read_kind_slash, _read_intent, _read_pairs, _read_shapes, _read_numbers,
           _read_values, _read_current_replicas, _read_replicas, _read_namespace, _read_kinds_and_name, _read_bare_name, _settle_kind)


def _norm(word: str) -> str:
    return re.sub(r"\s+", " ", word.lower())


def _looks_like_pod(name: str) -> bool:
    """A Deployment's pod: `<name>-<replicaset hash>-<5 chars>`."""
    return bool(re.fullmatch(r"[a-z0-9-]+-[a-z0-9]{6,10}-[a-z0-9]{5}", name))


_BEFORE_OK = STOPWORDS | {"<start>"}


def _name_beside(s: _Scanner, tokens: list[tuple[int, int, str]], kind: re.Match[str]) -> str | None:
    """The name next to a kind word: "the api deployment" or "deployment api"."""
    before = [t for t in tokens if t[1] <= kind.start()]
    after = [t for t in tokens if t[0] >= kind.end()]
    prev = before[-1] if before else None
    nxt = after[0] if after else None
    # The word before counts only when directly before the kind word.
    if prev and s.text[prev[1]:kind.start()].strip():
        prev = None
    if nxt and s.text[kind.end():nxt[0]].strip() not in ("", ":"):
        nxt = None
    prev_ok = prev is not None and s.free(prev[0], prev[1]) and is_candidate_name(prev[2])
    next_ok = nxt is not None and s.free(nxt[0], nxt[1]) and is_candidate_name(nxt[2])
    if next_ok and nxt is not None and _looks_like_pod(nxt[2]):
        s.take(nxt[0], nxt[1])
        return nxt[2]
    if prev_ok and prev is not None:
        idx = before.index(prev)
        lead = before[idx - 1] if idx > 0 else None
        lead_word = lead[2] if lead and not s.text[lead[1]:prev[0]].strip(" '\",") else "<start>"
        if lead_word in _BEFORE_OK or (lead and not s.free(lead[0], lead[1])) or not next_ok:
            s.take(prev[0], prev[1])
            return prev[2]
    if next_ok and nxt is not None:
        s.take(nxt[0], nxt[1])
        return nxt[2]
    return None
