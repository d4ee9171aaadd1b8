#!/usr/bin/env bash
# `make serve`: the HTTP server with the embedder (and the MLX model, when one is available)
# loaded once at start-up. Extra arguments go to `rag-k8s serve` (e.g. --port 9000).
# Binds 127.0.0.1; another address needs RAG_K8S_API_TOKEN (the server refuses otherwise).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RAG="$ROOT/.venv/bin/rag-k8s"
[ -x "$RAG" ] || { echo "start-server: $RAG is missing; run 'make venv' first" >&2; exit 1; }

# A source checkout keeps its state (index, logs, models) beside the code, as the seed shows.
export RAG_K8S_HOME="${RAG_K8S_HOME:-$ROOT}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false

"$RAG" build-index --quiet
exec "$RAG" serve --host "${RAG_K8S_HOST:-127.0.0.1}" --port "${RAG_K8S_PORT:-8000}" --preload "$@"
