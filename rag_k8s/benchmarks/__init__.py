"""Benchmarks run by `rag-k8s bench` (see `rag_k8s.bench`).

Each module here is one section of BENCHMARKS.md and defines `NAME: str` (what `--only` takes),
`TITLE: str` (the section heading) and `run(settings) -> str` (the section's Markdown body).
Modules are discovered with pkgutil and run in name order; a module whose name starts with `_`
is a helper, not a benchmark.
"""
