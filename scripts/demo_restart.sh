#!/usr/bin/env bash
# `make demo`: a real kubectl restart through rag-k8s, against the LOCAL PRACTICE API stand-in
# (tests/apiserver), NOT a cluster. Needs ./.venv (make bootstraps it) and the built index.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
RAG="$ROOT/.venv/bin/rag-k8s"
KUBECTL="$ROOT/.venv/bin/kubectl"
export RAG_K8S_HOME="${RAG_K8S_HOME:-$ROOT}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

for tool in "$PY" "$RAG" "$KUBECTL"; do
  [ -x "$tool" ] || { echo "demo: $tool is missing; run 'make demo' (it bootstraps .venv)" >&2; exit 1; }
done

SANDBOX="$(mktemp -d -t rag-k8s-demo.XXXXXX)"
STANDIN_PID=""
cleanup() {
  if [ -n "$STANDIN_PID" ] && kill -0 "$STANDIN_PID" 2>/dev/null; then
    kill "$STANDIN_PID" 2>/dev/null || true
    wait "$STANDIN_PID" 2>/dev/null || true
    echo "==> stopped the local practice API"
  fi
  rm -rf "$SANDBOX"
}
trap cleanup EXIT INT TERM

step() { printf '\n==> %s\n' "$*"; }

step "Starting a LOCAL PRACTICE API (the test stand-in in tests/apiserver). This is NOT A CLUSTER:"
echo "    an in-memory imitation of the Kubernetes API on 127.0.0.1, with sample namespaces"
echo "    prod, staging and dev. The real kubectl ($("$KUBECTL" version --client | head -n 1)) talks to it."
"$PY" -m tests.apiserver --workdir "$SANDBOX/api" >"$SANDBOX/standin.log" 2>&1 &
STANDIN_PID=$!
for _ in $(seq 1 100); do
  [ -s "$SANDBOX/api/standin.json" ] && break
  kill -0 "$STANDIN_PID" 2>/dev/null || { cat "$SANDBOX/standin.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$SANDBOX/api/standin.json" ] || { echo "demo: the practice API did not start" >&2; exit 1; }
head -n 1 "$SANDBOX/standin.log"

# rag-k8s refuses --kubeconfig/--context, so point kubectl at the sandbox through the environment;
# kubectl's discovery cache goes to the sandbox too, not to ~/.kube.
export KUBECONFIG="$SANDBOX/api/kubeconfig"
export KUBECACHEDIR="$SANDBOX/kube-cache"
export RAG_K8S_KUBECTL="$KUBECTL"

step "rag-k8s retrieve --intent restart --resource deployment 'safe restart'"
"$RAG" retrieve --intent restart --resource deployment "safe restart"

step "Dry run: rag-k8s exec --intent restart --resource deployment -n prod --name api --dry-run"
"$RAG" exec --intent restart --resource deployment -n prod --name api --dry-run

step "ReplicaSets of api in prod before the restart (kubectl get rs -n prod -l app=api)"
"$KUBECTL" get rs -n prod -l app=api

step "The real restart: rag-k8s exec --intent restart --resource deployment -n prod --name api --yes"
"$RAG" exec --intent restart --resource deployment -n prod --name api --yes

step "kubectl get rs -n prod: the restart made a new ReplicaSet (the old one is scaled to 0)"
"$KUBECTL" get rs -n prod

AUDIT_LOG="$("$RAG" audit path)"
step "The last audit log line (tail -n 1 ${AUDIT_LOG#"$ROOT"/})"
tail -n 1 "$AUDIT_LOG" | "$PY" -m json.tool

step "Done. Everything above ran against the LOCAL PRACTICE API, NOT A CLUSTER."
