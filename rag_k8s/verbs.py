"""The one verb table: every kubectl verb rag-k8s knows, read by kubectl_argv, policy, guardrails
and vocab alike (no other module lists verbs).

Per verb: the intents it serves (the first decides its risk), whether it only reads, how its
positionals are read, its flags as the pinned kubectl 1.37.1 `--help` lists them
(tests/test_kubectl_argv.py checks them against the binary), and whether it takes manifests.
`NEVER_RUN` lists the verbs rag-k8s refuses whatever the policy says, each with its reason; any
other verb that is not in `VERBS` is refused too, as unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# How a verb's positionals are read (kubectl_argv._targets):
#   object   kind [name...] or kind/name...      (get, delete, scale, patch, wait, ...)
#   pairs    object, then key=value / key- pairs   (label, annotate, set env, set image)
#   taint    node names, then key=value:Effect / key:Effect- / key-
#   nodes    node names                            (cordon, uncordon, drain)
#   named    one NAME of the verb's fixed kind     (create namespace|configmap|..., run)
#   pod      logs' pod or kind/name [container]
#   events, top, can-i: their own shapes
#   schema   explain's one resource path (`deployment.spec.replicas`)
#   none     no positionals                        (version, api-resources, config current-context)
#   files    no positionals; the objects come from -f/-k (apply, diff, create -f)
Targets = Literal["object", "pairs", "taint", "nodes", "named", "pod", "events", "top", "can-i",
                  "schema", "none", "files"]

# `kubectl options` of kubectl 1.37.1: boolean flags, flags taking a value, optional-value flags.
GLOBAL_FLAGS: tuple[str, str, str] = (
    "disable-compression insecure-skip-tls-verify match-server-version warnings-as-errors h/help",
    "as as-group as-uid as-user-extra cache-dir certificate-authority client-certificate client-key "
    "cluster context kubeconfig kuberc log-flush-frequency n/namespace password profile "
    "profile-output proxy-url request-timeout s/server tls-server-name token user username v/v "
    "vmodule",
    "",
)

# The value a bare optional-value flag takes (pflag's NoOptDefVal).
OPTIONAL_DEFAULT: dict[str, str] = {"dry-run": "unchanged", "cascade": "background",
                                    "validate": "strict"}


@dataclass(frozen=True)
class VerbSpec:
    """One kubectl verb as rag-k8s reads and judges it."""

    words: str  # the table key: `get`, `rollout pause`, `top pod`, `create service clusterip`
    intents: tuple[str, ...]  # the first decides the risk (CONTRACT §3-§4)
    read_only: bool
    targets: Targets
    flags: tuple[str, str, str]  # (bools, values, optional-value) from `kubectl <verb> --help`
    kind: str | None = None  # the kind a `named` verb creates (`create configmap` -> configmap)
    manifests: bool = False  # takes -f/-k manifests (the argv door's `files`)
    object_free: bool = False  # names no object and no namespace (version, api-resources, ...)

    @property
    def name(self) -> str:
        """The verb as the policy names it (`top pod` and `top node` are both `top`)."""
        return "top" if self.words.startswith("top ") else self.words

    @property
    def server_dry_run(self) -> bool:
        """Whether the pinned kubectl accepts --dry-run=server for this changing verb."""
        return not self.read_only and "dry-run" in self.flags[2].split()


def _v(words: str, intents: str, targets: Targets, flags: tuple[str, str, str], *,
       read_only: bool = False, kind: str | None = None, manifests: bool = False,
       object_free: bool = False) -> VerbSpec:
    return VerbSpec(words, tuple(intents.split()), read_only, targets, flags, kind, manifests,
                    object_free)


_CREATE_NAMED = ("allow-missing-template-keys save-config show-managed-fields",
                 "field-manager o/output template", "dry-run validate")
_PAUSE = ("allow-missing-template-keys R/recursive show-managed-fields",
          "field-manager f/filename k/kustomize o/output l/selector template", "")
_LABEL = ("all A/all-namespaces allow-missing-template-keys list local overwrite R/recursive "
          "show-managed-fields",
          "field-manager field-selector f/filename k/kustomize o/output resource-version "
          "l/selector template", "dry-run")

_TABLE: tuple[VerbSpec, ...] = (
    # --- read-only ---------------------------------------------------------------------------
    _v("get", "get diagnose", "object", (
        "A/all-namespaces allow-missing-template-keys ignore-not-found no-headers "
        "output-watch-events R/recursive server-print show-kind show-labels show-managed-fields "
        "w/watch watch-only",
        "chunk-size field-selector f/filename k/kustomize L/label-columns o/output raw l/selector "
        "sort-by subresource template", ""), read_only=True),
    _v("describe", "describe diagnose", "object", (
        "A/all-namespaces R/recursive show-events",
        "chunk-size f/filename k/kustomize l/selector", ""), read_only=True),
    _v("logs", "logs diagnose", "pod", (
        "all-containers all-pods f/follow ignore-errors insecure-skip-tls-verify-backend prefix "
        "p/previous timestamps",
        "c/container limit-bytes max-log-requests pod-running-timeout l/selector since since-time "
        "tail", ""), read_only=True),
    _v("events", "events diagnose", "events", (
        "A/all-namespaces allow-missing-template-keys no-headers show-managed-fields w/watch",
        "chunk-size for o/output template types", ""), read_only=True),
    _v("top pod", "top", "top", (
        "A/all-namespaces containers no-headers show-swap sum use-protocol-buffers",
        "field-selector l/selector sort-by", ""), read_only=True),
    _v("top node", "top", "top", (
        "no-headers show-capacity show-swap use-protocol-buffers",
        "l/selector sort-by", ""), read_only=True),
    _v("auth can-i", "can-i", "can-i", (
        "A/all-namespaces list no-headers q/quiet", "subresource", ""), read_only=True),
    _v("rollout status", "rollout-status", "object", (
        "R/recursive w/watch", "f/filename k/kustomize revision l/selector timeout", ""),
       read_only=True),
    _v("rollout history", "rollout-history", "object", (
        "allow-missing-template-keys R/recursive show-managed-fields",
        "f/filename k/kustomize o/output revision l/selector template", ""), read_only=True),
    _v("explain", "explain", "schema", ("R/recursive", "api-version max-depth o/output", ""),
       read_only=True, object_free=True),
    _v("api-resources", "api-resources", "none", (
        "cached namespaced no-headers show-managed-fields",
        "api-group categories o/output sort-by verbs", ""), read_only=True, object_free=True),
    _v("api-versions", "api-versions", "none", ("", "", ""), read_only=True, object_free=True),
    _v("version", "version", "none", ("client", "o/output", ""), read_only=True,
       object_free=True),
    _v("cluster-info", "cluster-info", "none", ("", "", ""), read_only=True, object_free=True),
    _v("config current-context", "contexts", "none", ("", "", ""), read_only=True,
       object_free=True),
    _v("config get-contexts", "contexts", "none", ("no-headers", "o/output", ""),
       read_only=True, object_free=True),
    _v("wait", "wait", "object", (
        "all A/all-namespaces allow-missing-template-keys local R/recursive show-managed-fields",
        "field-selector f/filename for o/output l/selector template timeout", ""),
       read_only=True),
    _v("diff", "diff", "files", (
        "force-conflicts prune R/recursive server-side show-managed-fields show-secrets",
        "concurrency field-manager f/filename k/kustomize prune-allowlist l/selector", ""),
       read_only=True, manifests=True),
    # --- changing ----------------------------------------------------------------------------
    _v("rollout restart", "restart", "object", _PAUSE),
    _v("rollout undo", "rollback", "object", (
        "allow-missing-template-keys R/recursive show-managed-fields",
        "f/filename k/kustomize o/output l/selector template to-revision", "dry-run")),
    _v("rollout pause", "pause", "object", _PAUSE),
    _v("rollout resume", "resume", "object", _PAUSE),
    _v("scale", "scale", "object", (
        "all allow-missing-template-keys R/recursive show-managed-fields",
        "current-replicas f/filename k/kustomize o/output replicas resource-version l/selector "
        "template timeout", "dry-run")),
    _v("set image", "set-image", "pairs", (
        "all allow-missing-template-keys local R/recursive show-managed-fields",
        "field-manager f/filename k/kustomize o/output l/selector template", "dry-run")),
    _v("set env", "set-env", "pairs", (
        "all allow-missing-template-keys list local overwrite R/recursive resolve "
        "show-managed-fields",
        "c/containers e/env field-manager f/filename from keys k/kustomize o/output prefix "
        "l/selector template", "dry-run")),
    _v("set resources", "set-resources", "object", (
        "all allow-missing-template-keys local R/recursive show-managed-fields",
        "c/containers field-manager f/filename k/kustomize limits o/output requests l/selector "
        "template", "dry-run")),
    _v("autoscale", "autoscale", "object", (
        "allow-missing-template-keys R/recursive save-config show-managed-fields",
        "cpu field-manager f/filename k/kustomize max memory min name o/output template",
        "dry-run")),
    _v("label", "label", "pairs", _LABEL),
    _v("annotate", "annotate", "pairs", _LABEL),
    _v("taint", "taint", "taint", (
        "all allow-missing-template-keys overwrite show-managed-fields",
        "field-manager o/output l/selector template", "dry-run validate")),
    _v("cordon", "cordon", "nodes", ("", "l/selector", "dry-run")),
    _v("uncordon", "uncordon", "nodes", ("", "l/selector", "dry-run")),
    _v("drain", "drain", "nodes", (
        "delete-emptydir-data disable-eviction force ignore-daemonsets",
        "chunk-size grace-period pod-selector l/selector skip-wait-for-delete-timeout timeout",
        "dry-run")),
    _v("create", "create", "files", (
        "allow-missing-template-keys edit R/recursive save-config show-managed-fields "
        "windows-line-endings",
        "field-manager f/filename k/kustomize o/output raw l/selector template",
        "dry-run validate"), manifests=True),
    _v("create namespace", "create", "named", _CREATE_NAMED, kind="namespace"),
    _v("create configmap", "create", "named", (
        "allow-missing-template-keys append-hash save-config show-managed-fields",
        "field-manager from-env-file from-file from-literal o/output template", "dry-run validate"),
       kind="configmap"),
    _v("create deployment", "create", "named", (
        "allow-missing-template-keys save-config show-managed-fields",
        "field-manager image o/output port r/replicas template", "dry-run validate"),
       kind="deployment"),
    _v("create service clusterip", "create", "named", (
        "allow-missing-template-keys save-config show-managed-fields",
        "clusterip field-manager o/output tcp template", "dry-run validate"), kind="service"),
    _v("create service nodeport", "create", "named", (
        "allow-missing-template-keys save-config show-managed-fields",
        "field-manager node-port o/output tcp template", "dry-run validate"), kind="service"),
    _v("create service loadbalancer", "create", "named", (
        "allow-missing-template-keys save-config show-managed-fields",
        "field-manager o/output tcp template", "dry-run validate"), kind="service"),
    _v("create job", "create", "named", (
        "allow-missing-template-keys save-config show-managed-fields",
        "field-manager from image o/output template", "dry-run validate"), kind="job"),
    _v("expose", "expose", "object", (
        "allow-missing-template-keys R/recursive save-config show-managed-fields",
        "cluster-ip external-ip field-manager f/filename k/kustomize l/labels load-balancer-ip "
        "name o/output override-type overrides port protocol selector session-affinity "
        "target-port template type", "dry-run")),
    _v("run", "run", "named", (
        "allow-missing-template-keys attach command expose force leave-stdin-open privileged "
        "q/quiet R/recursive rm save-config show-managed-fields i/stdin t/tty wait",
        "annotations detach-keys env field-manager grace-period image image-pull-policy "
        "k/kustomize l/labels o/output override-type overrides pod-running-timeout port restart "
        "template timeout", "cascade dry-run"), kind="pod"),
    _v("patch", "patch", "object", (
        "allow-missing-template-keys local R/recursive show-managed-fields",
        "field-manager f/filename k/kustomize o/output p/patch patch-file subresource template "
        "type", "dry-run")),
    _v("apply", "apply", "files", (
        "all allow-missing-template-keys force force-conflicts openapi-patch overwrite prune "
        "R/recursive server-side show-managed-fields wait",
        "field-manager f/filename grace-period k/kustomize o/output prune-allowlist l/selector "
        "subresource template timeout", "cascade dry-run validate"), manifests=True),
    _v("delete", "delete", "object", (
        "all A/all-namespaces force ignore-not-found i/interactive now R/recursive wait",
        "field-selector f/filename grace-period k/kustomize o/output raw l/selector timeout",
        "cascade dry-run"), manifests=True),
)

VERBS: Mapping[str, VerbSpec] = {spec.words: spec for spec in _TABLE}

# Verbs rag-k8s never runs, whatever the org policy says, each with the reason shown to the user
# (CONTRACT §3). A family (`config`) lists its members; `config` alone covers the unlisted ones.
_SHELL = "it opens a shell or runs a command inside a container"
NEVER_RUN: Mapping[str, str] = {
    "exec": f"kubectl exec is never run through rag-k8s: {_SHELL}, which no allow-list can judge",
    "attach": "kubectl attach is never run through rag-k8s: it attaches to a running "
              "container's console",
    "edit": "kubectl edit is never run through rag-k8s: it opens an editor on the live object, "
            "so what changes cannot be checked before it is sent",
    "port-forward": "kubectl port-forward is never run through rag-k8s: it opens a network "
                    "tunnel into the cluster",
    "proxy": "kubectl proxy is never run through rag-k8s: it serves the whole Kubernetes API on a "
             "local port",
    "cp": "kubectl cp is never run through rag-k8s: it copies files into or out of containers",
    "debug": "kubectl debug is never run through rag-k8s: it starts a debugging container or "
             "node shell",
    "config use-context": "kubectl config use-context is never run through rag-k8s: it switches "
                          "the cluster every later command talks to",
    "config set": "kubectl config set is never run through rag-k8s: it edits the kubeconfig",
    "config set-context": "kubectl config set-context is never run through rag-k8s: it edits "
                          "the kubeconfig",
    "config set-cluster": "kubectl config set-cluster is never run through rag-k8s: it edits "
                          "the kubeconfig",
    "config set-credentials": "kubectl config set-credentials is never run through rag-k8s: it "
                              "writes credentials into the kubeconfig",
    "config unset": "kubectl config unset is never run through rag-k8s: it edits the kubeconfig",
    "config delete-context": "kubectl config delete-context is never run through rag-k8s: it "
                             "edits the kubeconfig",
    "config delete-cluster": "kubectl config delete-cluster is never run through rag-k8s: it "
                             "edits the kubeconfig",
    "config delete-user": "kubectl config delete-user is never run through rag-k8s: it edits "
                          "the kubeconfig",
    "config rename-context": "kubectl config rename-context is never run through rag-k8s: it "
                             "edits the kubeconfig",
    "config view": "kubectl config view is never run through rag-k8s: it prints the kubeconfig, "
                   "and with --raw its credentials; use config current-context or "
                   "config get-contexts",
    "config": "this kubectl config sub-command is never run through rag-k8s: only "
              "config current-context and config get-contexts are",
    "certificate approve": "kubectl certificate approve is never run through rag-k8s: it grants "
                           "a certificate that can authenticate to the cluster",
    "certificate deny": "kubectl certificate deny is never run through rag-k8s: it decides a "
                        "certificate signing request",
    "certificate": "kubectl certificate is never run through rag-k8s: it decides certificate "
                   "signing requests",
    "cluster-info dump": "kubectl cluster-info dump is never run through rag-k8s: it dumps the "
                         "state and logs of the whole cluster",
    "replace": "kubectl replace is never run through rag-k8s: it overwrites whole objects; use "
               "apply with files, which shows a diff first",
    "plugin": "kubectl plugin is never run through rag-k8s: plugins are arbitrary programs",
    "kustomize": "kubectl kustomize is never run through rag-k8s on its own; send the folder as "
                 "`files` to apply -k",
    "alpha": "kubectl alpha commands are never run through rag-k8s",
    "auth reconcile": "kubectl auth reconcile is never run through rag-k8s: it writes RBAC "
                      "objects",
    "auth whoami": "kubectl auth whoami is never run through rag-k8s: it reports the credentials "
                   "rag-k8s runs with",
}

# First words under which kubectl groups sub-commands: the parser reads the longest verb it knows.
PARENTS: frozenset[str] = frozenset(
    w.split()[0] for w in (*VERBS, *NEVER_RUN) if " " in w
)
_PREFIXES: frozenset[tuple[str, ...]] = frozenset(
    tuple(w.split()[:i]) for w in (*VERBS, *NEVER_RUN) for i in range(1, len(w.split()) + 1)
)


def is_prefix(words: tuple[str, ...]) -> bool:
    """Whether `words` begins (or is) a verb of VERBS or NEVER_RUN."""
    return words in _PREFIXES


def extends(words: tuple[str, ...]) -> bool:
    """Whether some known verb is longer than `words` and starts with it."""
    n = len(words)
    return any(len(p) > n and p[:n] == words for p in _PREFIXES)


def never_run_reason(verb: str) -> str | None:
    """The reason `verb` (its words as parsed) is never run, or None when it may be."""
    if verb in NEVER_RUN:
        return NEVER_RUN[verb]
    first = verb.split()[0] if verb.split() else ""
    if verb not in VERBS and first in NEVER_RUN:
        return NEVER_RUN[first]
    return None


# Derived views, one per reader: the policy's verb -> intents, the read-only verbs, the verbs the
# guardrails and the executor treat as changing, and those with a server-side dry run.
POLICY_VERBS: Mapping[str, tuple[str, ...]] = {spec.name: spec.intents for spec in _TABLE}
READ_ONLY_VERBS: frozenset[str] = frozenset(s.name for s in _TABLE if s.read_only)
SERVER_DRY_RUN_VERBS: frozenset[str] = frozenset(s.name for s in _TABLE if s.server_dry_run)
OBJECT_FREE_VERBS: frozenset[str] = frozenset(s.name for s in _TABLE if s.object_free)
MANIFEST_VERBS: frozenset[str] = frozenset(s.name for s in _TABLE if s.manifests)
INTENT_VERBS: Mapping[str, tuple[str, ...]] = {
    intent: tuple(dict.fromkeys(s.name for s in _TABLE if s.intents[0] == intent))
    for intent in dict.fromkeys(s.intents[0] for s in _TABLE)
}
