"""Manifests (`apply|create|delete|diff -f FILE`, `-k DIR`): the policy judges the objects inside.

A manifest command names no object in its argv, so the argv alone says nothing about what it
changes. This stage reads the files from this machine (never a URL, never stdin), renders a
kustomization with the pinned kubectl's own `kubectl kustomize` (offline; remote bases refused),
parses every object (multi-document YAML, JSON, `List` kinds) and judges each one against the org
policy: its kind, its namespace (its own or the command's `-n`, never the kubeconfig's default),
cluster-scoped kinds refused. One object outside the policy and nothing runs; the refusal names it.

Before a change runs, `kubectl diff` (a server-side dry run) shows what will change; the digest
of the files and that diff is what the caller confirms (`constraints.previewDigest`), so files or
a cluster that changed between preview and run are refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import ArgvError
from .guardrails import Subject, argv_shape, no_credential_flags, restart_suggestion
from .kubectl_argv import ParsedArgv, parse_argv
from .policy import Decision, Policy
from . import verbs
# The pure-Python parser for manifests, which arrive from anyone who can send a request:
# libyaml recurses in C without a limit, and a 100 KB file of nested brackets kills the
# process; Python's parser stops at its recursion limit with an error.
from .yamlsafe import DuplicateKeyError, StrictSafeLoader
from .vocab import CLUSTER_SCOPED, RISK_ORDER, base_risk, is_dns1123_label, normalize_resource

if TYPE_CHECKING:
    from .cards import Corpus
    from .config import Settings
    from .planner import Plan
    from .execute import ExecResult
    from .request import Request

MANIFEST_VERBS = verbs.MANIFEST_VERBS  # apply, create, delete, diff (the one verb table)
MANIFEST_EXTENSIONS = (".yaml", ".yml", ".json")  # what kubectl reads from a folder given to -f
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 64
MAX_OBJECTS = 500
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

# Flags each manifest verb may carry besides -f/-k/-R and -n (deny by default): what changes
# nothing about which objects are touched. Refused, among others: --prune (deletes what the
# files do not name), --force, --force-conflicts, --selector (a subset the policy cannot see),
# --show-secrets, --edit, --raw, -o other than name (it would echo Secret data).
_COMMON = {"filename", "kustomize", "recursive", "namespace", "request-timeout",
           "warnings-as-errors", "match-server-version", "disable-compression"}
ALLOWED_FLAGS: dict[str, frozenset[str]] = {
    "apply": frozenset(_COMMON | {"dry-run", "server-side", "field-manager", "validate",
                                  "overwrite", "wait", "timeout", "output", "openapi-patch"}),
    "create": frozenset(_COMMON | {"dry-run", "field-manager", "validate", "save-config",
                                   "output"}),
    "delete": frozenset(_COMMON | {"dry-run", "wait", "timeout", "ignore-not-found", "cascade",
                                   "grace-period", "output"}),
    "diff": frozenset(_COMMON | {"server-side", "field-manager", "concurrency"}),
}
# Kinds kubectl users meet that are cluster-scoped: named as such in refusals.
_CLUSTER_KINDS = frozenset({
    "Namespace", "Node", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "PersistentVolume",
    "StorageClass", "PriorityClass", "APIService", "CSIDriver", "IngressClass", "RuntimeClass",
    "CertificateSigningRequest", "VolumeAttachment",
})
# Lines of a `kubectl diff` that change between two runs on the same files and cluster: the
# header's temp paths and times, and the fields a server dry run stamps afresh.
_VOLATILE = re.compile(
    r"^(diff -u -N .*|(---|\+\+\+) .*|[-+ ]\s*(creationTimestamp|uid|resourceVersion|generation):"
    r".*)$"
)


class ManifestError(Exception):
    """A manifest that cannot be read or judged: the message names the file (and object)."""


@dataclass(frozen=True)
class ManifestObject:
    kind: str
    name: str
    namespace: str | None  # the effective namespace: the object's own, else the command's -n
    source: str  # `file` or `file (document N)`

    def label(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind}/{self.name}{where} ({self.source})"


@dataclass(frozen=True)
class Manifests:
    objects: tuple[ManifestObject, ...]
    content_sha256: str  # over every file read (and the kustomize rendering), in order


@dataclass(frozen=True)
class Preview:
    """What the caller sees (and confirms) before a manifest change: `plan.preview`."""

    command: list[str]  # the `kubectl diff` that produced `diff`
    objects: list[str]
    diff: str | None  # None in `plan()` (it runs no kubectl) and for `delete -f`
    digest: str | None
    deletes: bool = False  # the diff removes an object: high risk
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"command": list(self.command), "objects": list(self.objects), "diff": self.diff,
                "digest": self.digest}


# ---------------------------------------------------------------- recognising the command


def parsed_manifest_argv(argv: list[str]) -> ParsedArgv | None:
    """The parsed argv when it is a manifest command (a manifest verb with -f or -k), else None."""
    try:
        parsed = parse_argv(list(argv))
    except ArgvError:
        return None  # the ordinary validator refuses it with the parse error
    if parsed.verb in MANIFEST_VERBS and ("filename" in parsed.flags
                                          or "kustomize" in parsed.flags):
        return parsed
    return None


def is_manifest_argv(argv: list[str]) -> bool:
    return parsed_manifest_argv(argv) is not None


def files_argv(request: Request) -> list[str]:
    """The argv of a structured manifest request (`intent` + `files` + `namespace`)."""
    assert request.intent is not None
    argv = ["kubectl", request.intent]
    folders = [p for p in request.files if _kustomization(Path(p).expanduser()) is not None]
    if folders:
        if len(request.files) > 1:
            raise ManifestError(f"{folders[0]} is a kustomization: give it alone (kubectl takes "
                                "one -k folder and no -f beside it)")
        argv += ["-k", folders[0]]
    else:
        for path in request.files:
            argv += ["-f", path]
    if request.namespace:
        argv += ["-n", request.namespace]
    return argv


def files_plan(request: Request, corpus: Corpus) -> Plan:
    """The plan of a structured manifest request: its argv, judged like any other."""
    from dataclasses import replace

    from .argv_door import argv_plan
    from .errors import InvalidRequest

    try:
        argv = files_argv(request)
    except ManifestError as e:
        raise InvalidRequest("files", str(e)) from None
    return replace(argv_plan(argv, corpus), planner="template",
                   rationale=f"kubectl {request.intent} of the manifests in files.")


def _kustomization(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    return next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)


# ---------------------------------------------------------------- the command's own flags


def argv_findings(argv: list[str], parsed: ParsedArgv, forbidden: frozenset[str]) -> list[str]:
    """Reasons the command itself is refused (before any file is read)."""
    reasons = [f.reason for f in argv_shape(Subject(argv, None, forbidden))]
    reasons += [f.reason for f in no_credential_flags(Subject(argv, None, forbidden))]
    reasons += [f.reason for f in no_credential_flags(Subject(argv, parsed, forbidden))
                if f.reason not in reasons]
    allowed = ALLOWED_FLAGS[parsed.verb]
    for flag in parsed.flags:
        if flag not in allowed and not any(flag in r for r in reasons):
            reasons.append(f"--{flag} is refused on kubectl {parsed.verb} of manifests "
                           "(only flags that change nothing about which objects are touched)")
    for value in dict.fromkeys(parsed.flags.get("dry-run", ())):
        if value != "server":
            reasons.append(f"--dry-run={value} is refused: only --dry-run=server is checked by "
                           "the API server")
    output = parsed.value("output")
    if output is not None and output != "name":
        reasons.append(f"-o {output} is refused on manifests: it would print the objects, "
                       "Secret data included; use -o name")
    grace = parsed.value("grace-period")
    if grace is not None and grace.lstrip("-").isdigit() and int(grace) == 0:
        reasons.append("--grace-period=0 is refused: it kills pods without a graceful shutdown")
    if parsed.positional or parsed.trailing:
        reasons.append(f"kubectl {parsed.verb} -f takes no object names beside the files "
                       f"({' '.join(parsed.positional + parsed.trailing)})")
    if "filename" in parsed.flags and "kustomize" in parsed.flags:
        reasons.append("give either -f files or one -k folder, not both")
    if len(parsed.flags.get("kustomize", ())) > 1:
        reasons.append("kubectl takes one -k folder")
    if parsed.namespace is not None and not is_dns1123_label(parsed.namespace):
        reasons.append(f"namespace {parsed.namespace!r} is not a DNS-1123 label")
    return reasons


# ---------------------------------------------------------------- reading the files


def _local(path_text: str) -> Path:
    if "://" in path_text or path_text.startswith(("git@", "github.com/")):
        raise ManifestError(f"{path_text}: manifests are read from this machine, never fetched "
                            "(download it, review it, and give the local file)")
    if path_text == "-":
        raise ManifestError("-f - (stdin) is refused: give the manifest as a file")
    return Path(path_text).expanduser()


def _files_of(parsed: ParsedArgv) -> list[Path]:
    recursive = parsed.is_true("recursive")
    out: list[Path] = []
    for value in parsed.flags.get("filename", ()):
        for text in value.split(","):  # kubectl's -f is a string slice: a,b is two files
            path = _local(text)
            if path.is_dir():
                pattern = "**/*" if recursive else "*"
                found = sorted(p for p in path.glob(pattern)
                               if p.is_file() and p.suffix in MANIFEST_EXTENSIONS)
                if not found:
                    raise ManifestError(f"{text}: the folder holds no .yaml, .yml or .json file")
                out += found
            elif path.is_file():
                out.append(path)
            else:
                raise ManifestError(f"{text}: no such file or folder")
    if len(out) > MAX_FILES:
        raise ManifestError(f"{len(out)} files: at most {MAX_FILES} in one command")
    return out


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ManifestError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit")
        return path.read_bytes()
    except OSError as e:
        raise ManifestError(f"{path}: cannot be read ({e.strerror})") from None


def _documents(text: str, source: str) -> list[tuple[dict[str, Any], str]]:
    try:
        # Duplicate keys refused: `namespace: dev` then `namespace: kube-system` must not be
        # read one way here and another way by kubectl.
        docs = list(yaml.load_all(text, Loader=StrictSafeLoader))  # noqa: S506 - a SafeLoader
    except DuplicateKeyError as e:
        raise ManifestError(f"{source}: {e}") from None
    except RecursionError:
        raise ManifestError(f"{source}: is nested too deeply to be read") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{source}:{where} is not valid YAML or JSON: "
                            f"{getattr(e, 'problem', None) or e}") from None
    out: list[tuple[dict[str, Any], str]] = []
    numbered = len([d for d in docs if d is not None]) > 1
    for i, doc in enumerate(d for d in docs if d is not None):
        where = f"{source}, document {i + 1}" if numbered else source
        out += _flatten(doc, where)
    return out


def _flatten(doc: Any, where: str) -> list[tuple[dict[str, Any], str]]:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: is not a Kubernetes object (a mapping with kind)")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        out: list[tuple[dict[str, Any], str]] = []
        for j, item in enumerate(doc["items"]):
            out += _flatten(item, f"{where}, item {j + 1}")
        return out
    return [(doc, where)]


def _object(doc: dict[str, Any], where: str, namespace: str | None) -> ManifestObject:
    kind, meta = doc.get("kind"), doc.get("metadata")
    if not isinstance(kind, str) or not kind or not isinstance(doc.get("apiVersion"), str):
        raise ManifestError(f"{where}: an object needs apiVersion and kind")
    if not isinstance(meta, dict):
        raise ManifestError(f"{where}: {kind} has no metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{where}: {kind} has no metadata.name (generateName is refused: "
                            "the preview could not name the object)")
    own = meta.get("namespace")
    if own is not None and not isinstance(own, str):
        raise ManifestError(f"{where}: {kind}/{name} metadata.namespace is not text")
    return ManifestObject(kind, name, own or namespace, where)


def load(parsed: ParsedArgv, *, settings: Settings, timeout: float) -> Manifests:
    """Read and parse every object the command's files (or kustomization) hold."""
    digest = hashlib.sha256()
    docs: list[tuple[dict[str, Any], str]] = []
    if "kustomize" in parsed.flags:
        folder = _local(parsed.flags["kustomize"][-1])
        rendered = render_kustomization(folder, settings=settings, timeout=timeout)
        digest.update(f"kustomize {folder}\0".encode() + rendered.encode())
        docs = _documents(rendered, f"{folder} rendered by kustomize")
    else:
        for path in _files_of(parsed):
            raw = _read(path)
            digest.update(f"{path}\0".encode() + raw + b"\0")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ManifestError(f"{path}: is not UTF-8 text") from None
            docs += _documents(text, str(path))
    if not docs:
        raise ManifestError("the files hold no object")
    if len(docs) > MAX_OBJECTS:
        raise ManifestError(f"{len(docs)} objects: at most {MAX_OBJECTS} in one command")
    namespace = parsed.namespace
    objects = tuple(_object(doc, where, namespace) for doc, where in docs)
    return Manifests(objects, digest.hexdigest())


# ---------------------------------------------------------------- kustomize, offline


_KUSTOMIZE_PATH_KEYS = ("resources", "bases", "components", "crds")
_KUSTOMIZE_REFUSED_KEYS = ("helmCharts", "helmGlobals", "helmChartInflationGenerator",
                           "generators", "transformers", "validators")


def check_kustomization(folder: Path, seen: set[Path] | None = None) -> None:
    """Refuse a kustomization that would fetch anything or run plugins: every resource, base and
    component must be a local file or folder; Helm charts and plugins are refused."""
    seen = seen if seen is not None else set()
    folder = folder.resolve()
    if folder in seen:
        return
    seen.add(folder)
    path = _kustomization(folder)
    if path is None:
        raise ManifestError(f"{folder}: no kustomization.yaml in the folder given to -k")
    try:
        data = yaml.load(_read(path).decode("utf-8"), Loader=StrictSafeLoader) or {}  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: is not a kustomization (a mapping)")
    for key in _KUSTOMIZE_REFUSED_KEYS:
        if key in data:
            raise ManifestError(f"{path}: `{key}` is refused: it runs generators or fetches "
                                "charts that the policy cannot judge before rendering")
    for key in _KUSTOMIZE_PATH_KEYS:
        for entry in data.get(key) or []:
            if not isinstance(entry, str):
                raise ManifestError(f"{path}: {key} entry {entry!r} is not a path")
            if "://" in entry or entry.startswith(("git@", "github.com/", "ssh:")) or \
                    "?ref=" in entry:
                raise ManifestError(f"{path}: {key} entry {entry} is remote: manifests are "
                                    "never fetched; vendor it into the folder")
            target = (folder / entry)
            if not target.exists():
                raise ManifestError(f"{path}: {key} entry {entry} is not a local file or "
                                    "folder (kustomize would try to fetch it)")
            if target.is_dir():
                check_kustomization(target, seen)


def render_kustomization(folder: Path, *, settings: Settings, timeout: float) -> str:
    """`kubectl kustomize FOLDER` with the pinned kubectl: offline once the check passed."""
    from .execute import run

    check_kustomization(folder)
    outcome = run(["kubectl", "kustomize", str(folder)], timeout=timeout, settings=settings)
    if outcome.exit_code != 0:
        first = (outcome.stderr.strip().splitlines() or ["no output"])[0]
        raise ManifestError(f"{folder}: kubectl kustomize failed: {first}")
    if outcome.truncated:
        raise ManifestError(f"{folder}: the rendered kustomization is too large to judge")
    return outcome.stdout


# ---------------------------------------------------------------- the policy, per object


def _object_reasons(obj: ManifestObject, verb: str, command_ns: str | None,
                    policy: Policy) -> list[str]:
    label = obj.label()
    kind = normalize_resource(obj.kind)
    if obj.kind in _CLUSTER_KINDS or kind in CLUSTER_SCOPED:
        return [f"{label}: {obj.kind} is cluster-scoped; manifests may change only namespaced "
                "objects"]
    if kind is None:
        return [f"{label}: kind {obj.kind} is not a kind the org policy knows, so it is refused"]
    if obj.namespace is None:
        return [f"{label}: has no namespace and the command has no -n; it would land in the "
                "kubeconfig's default namespace. Give -n <namespace> or metadata.namespace"]
    if command_ns is not None and obj.namespace != command_ns:
        return [f"{label}: its namespace differs from the command's -n {command_ns}"]
    if not is_dns1123_label(obj.namespace):
        return [f"{label}: namespace {obj.namespace!r} is not a DNS-1123 label"]
    if verb == "delete" and kind == "pod":
        return [f"{label}: deleting a pod is refused: restart the workload that owns it instead "
                f"({restart_suggestion(obj.name, obj.namespace)})"]
    allowed = policy.verbs.get(verb, frozenset())
    if kind not in allowed and "*" not in allowed:
        return [f"{label}: kubectl {verb} on {kind} is not on the RBAC allow-list"]
    rules = policy.namespaces.get(obj.namespace)
    if rules is None:
        return [f"{label}: namespace {obj.namespace!r} is not in the org policy: nothing may "
                "run there"]
    kinds = rules.get(verb, frozenset())
    if kind not in kinds and "*" not in kinds:
        return [f"{label}: namespace {obj.namespace!r} does not allow {verb} on {kind}"]
    return []


def judge(argv: list[str], parsed: ParsedArgv, *, policy: Policy, settings: Settings,
          timeout: float) -> tuple[Decision, Manifests | None]:
    """The policy's decision on a manifest command: its flags, then every object in its files."""
    risk = base_risk(parsed.verb) if parsed.verb != "delete" else "high"
    reasons = argv_findings(argv, parsed, policy.forbidden_flags)
    if reasons:
        return _refusal(reasons, risk), None
    try:
        manifests = load(parsed, settings=settings, timeout=timeout)
    except ManifestError as e:
        return _refusal([f"the manifest is refused: {e}"], risk), None
    for obj in manifests.objects:
        reasons += _object_reasons(obj, parsed.verb, parsed.namespace, policy)
    if reasons:
        return _refusal(reasons, risk), manifests
    if RISK_ORDER[risk] < RISK_ORDER["medium"]:
        return Decision(allowed=True, requires_confirmation=False, risk_level=risk), manifests
    return Decision(
        allowed=True, requires_confirmation=True, risk_level=risk,
        reasons=[f"{parsed.verb} of {len(manifests.objects)} object(s) is {risk} risk: review "
                 "plan.preview, then confirm with constraints.confirm and "
                 "constraints.previewDigest"],
    ), manifests


def _refusal(reasons: list[str], risk: str) -> Decision:
    return Decision(allowed=False, requires_confirmation=False, reasons=reasons, risk_level=risk)


# ---------------------------------------------------------------- the preview


def diff_argv(argv: list[str], parsed: ParsedArgv) -> list[str]:
    """`kubectl diff` over the same files, namespace and apply mode as the command."""
    out = ["kubectl", "diff"]
    for flag in ("filename", "kustomize"):
        for value in parsed.flags.get(flag, ()):
            out += [f"--{flag}={value}"]
    if parsed.is_true("recursive"):
        out.append("--recursive")
    if parsed.is_true("server-side"):
        out.append("--server-side")
    if parsed.value("field-manager"):
        out.append(f"--field-manager={parsed.value('field-manager')}")
    if parsed.namespace:
        out += ["-n", parsed.namespace]
    return out


def _removed_objects(diff: str) -> bool:
    """Whether the diff deletes a whole object (a file that goes to nothing)."""
    return bool(re.search(r"^@@ -\d+(,\d+)? \+0,0 @@", diff, re.M))


def diff_digest(manifests: Manifests, argv: list[str], diff: str | None) -> str:
    stable = "\n".join(line for line in (diff or "").splitlines() if not _VOLATILE.match(line))
    body = json.dumps({"argv": [a for a in argv if not a.startswith("--dry-run")],
                       "content": manifests.content_sha256, "diff": stable}, sort_keys=True)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def preview(argv: list[str], parsed: ParsedArgv, manifests: Manifests, *, settings: Settings,
            timeout: float, run_diff: bool) -> Preview:
    """The objects, and (for apply/create, when `run_diff`) `kubectl diff` of what will change."""
    from .execute import run

    command = diff_argv(argv, parsed)
    objects = [o.label() for o in manifests.objects]
    if not run_diff or parsed.verb == "delete":
        # delete -f: the preview is the list of objects that go (kubectl diff shows no deletion).
        digest = diff_digest(manifests, argv, None) if run_diff else None
        return Preview(command, objects, None, digest, deletes=parsed.verb == "delete")
    outcome: ExecResult = run(command, timeout=timeout, settings=settings)
    if outcome.exit_code not in (0, 1) or outcome.truncated:
        problem = (outcome.stderr.strip().splitlines() or [f"exit code {outcome.exit_code}"])[0]
        if outcome.truncated:
            problem = "the diff is too large to show in full"
        return Preview(command, objects, outcome.stdout or None, None, error=problem)
    return Preview(command, objects, outcome.stdout, diff_digest(manifests, argv, outcome.stdout),
                   deletes=_removed_objects(outcome.stdout))


def is_diff_with_changes(argv: list[str], exit_code: int) -> bool:
    """`kubectl diff` exits 1 when it found differences: that is a result, not a failure."""
    parsed = parsed_manifest_argv(argv)
    return exit_code == 1 and parsed is not None and parsed.verb == "diff"


@dataclass
class ManifestStage:
    """What tool.py needs from this stage: the decision and the preview to put on the plan."""

    decision: Decision
    preview: Preview | None = None


def evaluate(argv: list[str], *, policy: Policy, settings: Settings, request: Request,
             run: bool) -> ManifestStage:
    """Judge a manifest command; when it would change the cluster for real, run the preview and
    check the caller's digest (a stale one is refused; a missing one asks for confirmation)."""
    parsed = parsed_manifest_argv(argv)
    assert parsed is not None
    decision, manifests = judge(argv, parsed, policy=policy, settings=settings,
                                timeout=request.timeout)
    if not decision.allowed or manifests is None:
        return ManifestStage(decision)
    # A command that is itself a server-side dry run changes nothing either.
    changes = parsed.verb != "diff" and not request.dry_run and \
        parsed.value("dry-run") != "server"
    pv = preview(argv, parsed, manifests, settings=settings, timeout=request.timeout,
                 run_diff=run and changes)
    if pv.error is not None:
        return ManifestStage(_refusal([f"the preview (kubectl diff) failed, so nothing ran: "
                                       f"{pv.error}"], decision.risk_level), pv)
    if pv.deletes and decision.risk_level != "high":
        decision = Decision(allowed=True, requires_confirmation=True, risk_level="high",
                            reasons=[f"the diff deletes or replaces an object: high risk; "
                                     + decision.reasons[0]])
    given = request.preview_digest
    if run and changes and given is not None and given != pv.digest:
        return ManifestStage(_refusal([
            "the files or the cluster changed since the preview that was confirmed "
            f"({given}); nothing ran: review the new preview and confirm its digest"
        ], decision.risk_level), pv)
    return ManifestStage(decision, pv)


def digest_confirmed(preview_: dict[str, Any] | None, request: Request) -> bool:
    """A manifest change runs only with the digest of the preview it shows; others need none."""
    if preview_ is None or preview_.get("digest") is None:
        return True
    return request.preview_digest == preview_["digest"]
