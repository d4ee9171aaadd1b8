"""The action words: which phrasings ask for which intent of CONTRACT §3, and which ask for a verb
rag-k8s never runs.

The extractor reads the intent of free text from `extract.INTENT_PATTERNS`; the intents added in
this round (label, annotate, set-env, ...) get their phrasings here, merged in at the priority
they need ("remove the env var FOO" is set-env, not delete). The never-run verbs are read first
of all: "open a shell in pod web-1" is a request for `kubectl exec`, refused with the command for
the user to run, never answered with a read-only stand-in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Phrasings of the intents that joined CONTRACT §3 this round. Each is tried before the generic
# intent it would otherwise be read as (set-env before delete: "remove env var X").
NEW_INTENT_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("undo", (
        r"\bundo\s+(?:the\s+|my\s+)?(?:last|previous|latest)\s+(?:rag-k8s\s+)?"
        r"(?:operation|change|action|command)\b",
        r"\brag-k8s\s+undo\b",
    )),
    ("set-env", (
        r"\benv(?:ironment)?[\s-]*var(?:iable)?s?\b", r"\bset\s+env\b", r"\benv\s+vars?\b",
        r"\benvironment\s+(?:of|for|from)\b",
    )),
    ("set-resources", (
        r"\b(?:cpu|memory|mem)\s+(?:limits?|requests?)\b",
        r"\b(?:limits?|requests?)\s+(?:of|to|for|on)\s+(?:the\s+)?(?:cpu|memory)\b",
        r"\bset\s+resources\b", r"\bresource\s+(?:limits|requests)\b",
        r"\b(?:limit|cap)\s+(?:the\s+)?(?:cpu|memory|mem)\b",
    )),
    ("taint", (r"\btaint\w*\b",)),
    ("annotate", (
        r"\bannotat\w*\b",
    )),
    ("label", (
        r"^\W*(?:please\s+)?(?:kubectl\s+)?label\b(?!\s+selector)",
        r"\b(?:add|apply|put|attach|set|remove|delete|drop|update|overwrite|change|strip)\s+"
        r"(?:an?\s+|the\s+|this\s+)?labels?\b(?!\s+selector)",
        r"\blabel\s+(?:it|them|the\s+\w+\s+\S+\s+(?:with|as))\b",
    )),
    ("pause", (r"\bpause\b",)),
    ("resume", (r"\bresume\b(?!\s+scheduling)", r"\bunpause\b")),
    ("expose", (r"\bexpose\b",)),
    ("explain", (
        r"\bexplain\b(?!\s+(?:to\s+me\s+)?(?:why|what|how))", r"\b(?:what|which)\s+fields\b",
        r"\b(?:documentation|docs|schema|field\s+reference)\s+(?:for|of)\b",
    )),
    ("api-resources", (
        r"\bapi[- ]resources\b", r"\b(?:which|what)\s+(?:resource\s+)?(?:types|kinds)\b",
        r"\bresource\s+types\b",
    )),
    ("api-versions", (
        r"\bapi[- ]versions\b", r"\b(?:which|what)\s+api\s+(?:groups|versions)\b",
    )),
    ("version", (
        r"\b(?:kubectl|client|server|cluster|kubernetes|k8s)\s+versions?\b",
        r"\bversions?\s+of\s+(?:kubectl|kubernetes|k8s|the\s+(?:cluster|server|client|api\s+server))\b",
        r"^\W*(?:kubectl\s+)?version\W*$",
    )),
    ("cluster-info", (
        r"\bcluster[- ]info\b", r"\bcontrol[- ]plane\s+(?:address|endpoint|url)\b",
        r"\bwhere\s+is\s+the\s+(?:api\s+server|control\s+plane)\b",
    )),
    ("contexts", (
        r"\b(?:current|active)\s+(?:kube-?)?context\b", r"\bcurrent-context\b",
        r"\b(?:list|show)\s+(?:all\s+|the\s+|my\s+)?(?:kube-?)?contexts\b", r"\bget-contexts\b",
        r"\bwhich\s+(?:kube-?)?context\b",
    )),
    ("wait", (r"\bwait\s+(?:for|until)\b", r"\bblock\s+until\b")),
    ("diff", (r"\bdiff\b",)),
    ("apply", (r"^\W*(?:please\s+)?(?:kubectl\s+)?apply\b", r"\bapply\s+(?:the\s+)?(?:manifest|file|"
               r"kustomization|config(?:uration)?|yaml|changes)\b")),
    ("patch", (r"\bpatch\b",)),
    ("run", (
        r"^\W*(?:please\s+)?(?:kubectl\s+)?run\s+(?:an?\s+)?(?:new\s+)?(?:pod|container|\w[-\w]*\s+"
        r"(?:with|using|from)\s+(?:the\s+)?image)\b",
        r"\b(?:start|launch|spin\s+up)\s+(?:an?\s+|new\s+)+(?:pod|container)\b",
    )),
    ("create", (
        r"^\W*(?:please\s+)?(?:kubectl\s+)?create\b",
        r"\bcreate\s+(?:an?\s+|the\s+|new\s+)", r"\bmake\s+(?:an?\s+)?new\b",
    )),
)

# Where each new intent goes in the extractor's priority order: before the named old intent.
INSERT_BEFORE: dict[str, str] = {
    "undo": "rollback", "set-env": "set-image", "set-resources": "set-image", "taint": "cordon",
    "annotate": "set-image", "label": "set-image", "pause": "restart", "resume": "restart",
    "expose": "restart", "explain": "restart", "api-resources": "rollout-history",
    "api-versions": "rollout-history", "version": "rollout-history",
    "cluster-info": "rollout-history", "contexts": "rollout-history", "wait": "rollback",
    "diff": "restart", "apply": "restart", "patch": "scale", "run": "restart", "create": "restart",
}


@dataclass(frozen=True)
class NeverRun:
    """A kubectl verb rag-k8s never runs, the phrasings that ask for it and why it is refused."""

    verb: str
    why: str
    patterns: tuple[str, ...]
    # The command for the user to run, with {kind} {name} {ns} filled from the words.
    suggestion: str


NEVER_RUN: tuple[NeverRun, ...] = (
    NeverRun("cluster-info dump", "it writes the whole cluster's state, secrets' neighbours included",
             (r"\bcluster[- ]info\s+dump\b", r"\bdump\s+(?:the\s+|all\s+)?cluster\b"),
             "kubectl cluster-info dump"),
    NeverRun("config", "the kubeconfig chooses the cluster and the user, never a request",
             (r"\b(?:use|switch\s+to|change\s+to|select|set|activate)\s+(?:the\s+)?"
              r"(?:[\w.@:-]+\s+)?(?:kube-?)?context\b",
              r"\bswitch\s+(?:the\s+)?(?:kube-?)?context\b",
              r"\buse-context\b", r"\bset-(?:context|cluster|credentials)\b",
              r"\b(?:delete|rename)-(?:context|cluster|user)\b",
              r"\b(?:delete|remove|rename|add|create)\s+(?:the\s+|a\s+)?(?:kube-?)?context\b",
              r"\b(?:namespace|user|cluster)\s+(?:of|for|in)\s+(?:the\s+|my\s+)?(?:current\s+)?"
              r"(?:kube-?)?context\b",
              r"\bconfig\s+view\s+--raw\b", r"\bconfig\s+(?:set|unset)\b",
              r"\b(?:switch|change)\s+(?:to\s+)?(?:the\s+)?(?:other\s+)?cluster\b"),
             "kubectl config use-context {context}"),
    NeverRun("certificate", "approving or denying a certificate request grants or refuses an "
             "identity, a decision for a person",
             (r"\b(?:approve|deny|reject)\s+(?:the\s+|this\s+|that\s+)?(?:csrs?|certificates?|"
              r"certificate\s+signing\s+requests?|signing\s+requests?)\b",
              r"\bcertificate\s+(?:approve|deny)\b"),
             "kubectl certificate approve {name}"),
    NeverRun("port-forward", "it holds a tunnel open into the cluster",
             (r"\bport[- ]?forward\w*\b", r"\bforward\s+(?:the\s+)?(?:local\s+)?ports?\b",
              r"\bforward\s+(?:local\s+)?(?:port\s+)?\d+\b"),
             "kubectl port-forward {kind}/{name} {ports} -n {ns}"),
    NeverRun("proxy", "it opens a local door to the API server",
             (r"\bkubectl\s+proxy\b",
              r"\b(?:start|run|open|launch)\s+(?:an?\s+|the\s+)?(?:kubectl\s+|api\s+|local\s+)?"
              r"(?:server\s+)?proxy\b", r"\bproxy\s+(?:to|for)\s+the\s+api\b"),
             "kubectl proxy"),
    NeverRun("cp", "it moves files in or out of a container",
             (r"\bcp\b", r"\bcopy\s+(?:the\s+|a\s+|some\s+|my\s+)?(?:local\s+)?(?:files?|"
                         r"director(?:y|ies)|folders?|dirs?)\b",
              r"\bcopy\s+\S+\s+(?:from|to|into|out\s+of|onto)\s+(?:the\s+)?(?:pod|container)\b",
              r"\bcopy\s+\S*/\S*\b",
              r"\b(?:download|upload|fetch)\s+(?:the\s+|a\s+)?(?:files?|\S+\.\w{1,5})\s+"
              r"(?:from|to|into)\b"),
             "kubectl cp {ns}/{name}:<path> <local-path>"),
    NeverRun("debug", "it starts a debugging container in the cluster",
             (r"\bkubectl\s+debug\b", r"\bdebug(?:ging)?\s+containers?\b",
              r"\bephemeral\s+containers?\b", r"\bdebug\b.{0,60}?\s--image\b",
              r"\bdebug\s+(?:node/|.{0,40}\bwith\s+(?:an?\s+)?(?:[\w.:/-]+\s+)?image\b)",
              r"\bcopy\s+of\s+(?:the\s+|pod\s+)?\S*\s*(?:pod\b)?.{0,40}?\bdebug",
              r"\bdebug\s+(?:a\s+)?copy\b"),
             "kubectl debug -it {name} --image=busybox -n {ns}"),
    NeverRun("attach", "it joins a running container's console",
             (r"\battach\s+(?:to|into)\b", r"\bkubectl\s+attach\b", r"^\W*(?:please\s+)?attach\b"),
             "kubectl attach -it {name} -n {ns}"),
    NeverRun("exec", "it runs a command inside a container",
             (r"\bexec\b",
              r"\b(?:open|get|start|give\s+me|drop\s+(?:me\s+)?into|spawn|launch)\s+(?:an?\s+|me\s+an?\s+)?"
              r"(?:interactive\s+|root\s+)?(?:shell|terminal|bash|sh|console|tty|session|prompt)\b",
              r"\bshell\s+(?:into|in|to)\b", r"\bssh\s+(?:in)?to\b",
              r"\b(?:run|execute)\s+.{1,60}?\s+(?:in|inside|within|on)\s+(?:the\s+)?"
              r"(?:[\w-]+\s+)?(?:pod|container)\b",
              r"\b(?:run|execute)\s+.{1,60}?\s+inside\s+(?:the\s+|pod\s+|container\s+)",
              r"\binside\s+(?:the\s+)?container\b"),
             "kubectl exec -it {name} -n {ns} -- sh"),
    NeverRun("edit", "it opens the live object in an editor, where nothing can check the change",
             (r"^\W*(?:please\s+)?(?:kubectl\s+)?edit\b",
              r"\b(?:open|edit)\s+.{1,60}?\s+in\s+(?:an?\s+|my\s+|the\s+)?(?:text\s+)?editor\b",
              r"\bedit\s+(?:the\s+)?(?:live\s+)?(?:object|manifest|yaml|spec|resource|definition)\b"),
             "kubectl edit {kind}/{name} -n {ns}"),
    NeverRun("replace", "a whole-object replacement is not among the commands rag-k8s plans",
             (r"\bkubectl\s+(?:replace|plugin|alpha|kustomize|completion|auth\s+reconcile)\b",),
             "kubectl replace -f <file>"),
)
NEVER_RUN_RES = tuple((v, tuple(re.compile(p, re.I) for p in v.patterns)) for v in NEVER_RUN)

# Imperative verbs that start a second instruction after "and", "then", "also" ...
ACTION_VERBS = frozenset("""
get list show display describe inspect delete remove kill destroy terminate nuke restart bounce
recycle redeploy reload scale resize drain evacuate cordon uncordon rollback revert undo set update
change bump upgrade patch apply create make expose run label annotate taint untaint exec edit copy
cp wait diff pause resume attach debug forward port-forward proxy approve deny print dump switch use
tail watch stream fetch check verify add replace install uninstall wipe erase purge stop start
""".split())

# Options of the pinned kubectl's read and change verbs (from `kubectl <verb> --help`) that no
# card slot reads. Named in the words ("with a grace period", "follow", "--force"), they are a
# constraint; left unread, the plan would quietly drop it, so the check refuses it by name.
OPTION_WORDS: tuple[str, ...] = (
    "all-containers", "all-namespaces", "all-pods", "cascade", "chunk-size", "current-replicas",
    "delete-emptydir-data", "disable-eviction", "field-manager", "field-selector", "follow",
    "force", "forcefully", "grace-period", "ignore-errors", "ignore-not-found", "interactive",
    "kustomize", "label-columns", "limit-bytes", "max-log-requests", "no-headers", "prefix",
    "prefixed", "recursive", "resource-version", "save-config", "server-print", "show-capacity",
    "show-events", "show-kind", "show-labels", "show-managed-fields", "show-swap", "since-time",
    "sort-by", "sorted", "subresource", "timestamps", "timestamp", "timeout", "watch-only",
    "insecure-skip-tls-verify-backend", "pod-running-timeout", "immediately", "skip-wait",
    "overwrite", "overwriting", "every namespace", "all namespaces", "cluster-wide",
    "continuously", "keep streaming", "stream", "streaming", "live", "memory utilization",
    "memory target", "average memory", "field", "jsonpath", "custom-columns", "go-template",
    "template", "headers", "stdin", "selector", "sort",
)
OPTION_RE = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(w).replace(r"\-", r"[\s-]+").replace(r"\ ", r"\s+")
                              for w in sorted(OPTION_WORDS, key=len, reverse=True))
    + r")(?![\w-])", re.I)

# Kinds of Kubernetes (built in, from the pinned kubectl's api-resources) that no card acts on
# yet: named in the words, they make the request one no card can do, never a nearby kind's.
OTHER_KINDS: dict[str, str] = {
    "replication controller": "replicationcontroller", "replicationcontroller": "replicationcontroller",
    "rc": "replicationcontroller", "service account": "serviceaccount",
    "serviceaccount": "serviceaccount", "sa": "serviceaccount", "role": "role",
    "role binding": "rolebinding", "rolebinding": "rolebinding", "cluster role": "clusterrole",
    "clusterrole": "clusterrole", "cluster role binding": "clusterrolebinding",
    "clusterrolebinding": "clusterrolebinding", "network policy": "networkpolicy",
    "networkpolicy": "networkpolicy", "netpol": "networkpolicy", "persistent volume": "pv",
    "persistentvolume": "pv", "pv": "pv", "storage class": "storageclass",
    "storageclass": "storageclass", "endpoint": "endpoints", "endpoints": "endpoints",
    "endpointslice": "endpointslice", "lease": "lease", "limit range": "limitrange",
    "limitrange": "limitrange", "resource quota": "resourcequota", "resourcequota": "resourcequota",
    "quota": "resourcequota", "priority class": "priorityclass", "priorityclass": "priorityclass",
    "pod disruption budget": "poddisruptionbudget", "poddisruptionbudget": "poddisruptionbudget",
    "pdb": "poddisruptionbudget", "custom resource definition": "customresourcedefinition",
    "crd": "customresourcedefinition", "csr": "certificatesigningrequest",
    "certificate signing request": "certificatesigningrequest", "ingress class": "ingressclass",
    "ingressclass": "ingressclass", "volume attachment": "volumeattachment",
    "webhook": "webhook", "mutatingwebhookconfiguration": "webhook",
    "validatingwebhookconfiguration": "webhook", "runtime class": "runtimeclass",
    "controller revision": "controllerrevision", "pod template": "podtemplate",
    "csi driver": "csidriver", "csinode": "csinode", "component status": "componentstatus",
}
OTHER_KIND_RE = re.compile(
    r"(?<![\w./-])(" + "|".join(re.escape(w).replace(r"\ ", r"[\s-]*")
                               for w in sorted(OTHER_KINDS, key=len, reverse=True))
    + r")(?:e?s)?(?![\w/-])", re.I)
