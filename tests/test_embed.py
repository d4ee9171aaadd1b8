"""The ONNX Runtime embedder: it agrees with sentence-transformers, ranks the eval set the same,
keeps torch off the query path, and its export is rebuilt (or named as missing) when stale."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_k8s import embed, index
from rag_k8s.cards import cached_corpus
from rag_k8s.config import Settings
from rag_k8s.errors import IndexError_
from rag_k8s.request import parse_request
from rag_k8s.retrieve import _filter_cards, _lexical_bonus, _ranked
from rag_k8s.vocab import normalize_resource

REPO = Path(__file__).resolve().parent.parent
ASSET_CARDS = Path(__file__).resolve().parent / "assets" / "index_cards"


def eval_requests() -> list[dict[str, Any]]:
    lines = (REPO / "eval" / "cases.jsonl").read_text().splitlines()
    return [json.loads(line)["request"] for line in lines if line.strip()]


def eval_queries() -> list[str]:
    return [r["query"] for r in eval_requests() if isinstance(r.get("query"), str) and r["query"]]


@pytest.fixture(scope="module")
def real(rag_home: Path) -> tuple[Settings, Any, Any]:
    # Module scope runs before the per-test environment: name the session's home explicitly.
    settings = Settings.resolve(home=rag_home, cards_dir=REPO / "cards")
    loaded, corpus = index.ensure_index(settings)
    return settings, loaded, corpus


@pytest.fixture(scope="module")
def reference(real: tuple[Settings, Any, Any]) -> dict[str, np.ndarray]:
    """sentence-transformers (torch) embeddings of every card row and every eval query."""
    _, _, corpus = real
    rows = [t for c in corpus.cards for t in index.card_texts(c)]
    queries = eval_queries()
    vecs = index.reference_embed(rows + queries)
    return {"rows": vecs[:len(rows)], "queries": vecs[len(rows):]}


def test_onnx_agrees_with_sentence_transformers_on_every_card_text_and_eval_query(
    real: tuple[Settings, Any, Any], reference: dict[str, np.ndarray],
) -> None:
    settings, loaded, corpus = real
    rows = [t for c in corpus.cards for t in index.card_texts(c)]
    onnx_rows = index.embed(rows, settings)
    onnx_queries = index.embed(eval_queries(), settings)

    assert onnx_rows.shape == (len(rows), 384) and onnx_rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx_rows, axis=1), 1.0, atol=1e-5)
    assert float((onnx_rows * reference["rows"]).sum(1).min()) >= 0.9999
    assert float((onnx_queries * reference["queries"]).sum(1).min()) >= 0.9999
    # The saved index holds these same ONNX vectors (cards and queries from one runtime).
    assert np.allclose(loaded.vectors, onnx_rows, atol=1e-5)


def test_top1_on_the_eval_set_is_the_same_as_with_sentence_transformers(
    real: tuple[Settings, Any, Any], reference: dict[str, np.ndarray],
) -> None:
    settings, loaded, corpus = real
    st_index = replace(loaded, vectors=reference["rows"])
    queries = eval_queries()
    st_queries = dict(zip(queries, reference["queries"]))
    compared = 0
    for payload in eval_requests():
        try:
            request = parse_request(payload)
        except Exception:  # noqa: BLE001 - invalid cases never reach retrieval
            continue
        text = request.query
        if not text:
            continue
        kind = normalize_resource(request.resource) if request.resource else None
        keep = (_filter_cards(loaded, corpus, request.intent, kind)
                if request.intent or kind else None)
        bonus = _lexical_bonus(corpus, text)
        onnx_top = _ranked(loaded, index.embed([text], settings), bonus, 4, keep)
        st_top = _ranked(st_index, st_queries[text][None, :], bonus, 4, keep)
        assert [c for _, c in onnx_top[:1]] == [c for _, c in st_top[:1]], text
        compared += 1
    assert compared >= 50


def test_a_free_text_plan_in_a_fresh_process_imports_no_torch_faiss_or_numpy_ma(
    real: tuple[Settings, Any, Any],
) -> None:
    """Nor faiss (165 cards are scored by numpy) nor numpy.ma (np.unique's first call)."""
    code = (
        "import json, sys, traceback\n"
        "class Tell:  # names whoever imports them, for the failure message\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('torch', 'sentence_transformers', 'faiss', 'numpy.ma'):\n"
        "            traceback.print_stack()\n"
        "        return None\n"
        "sys.meta_path.insert(0, Tell())\n"
        "from rag_k8s import tool\n"
        "r = tool.plan({'query': 'restart the api deployment in prod'})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'sentence_transformers', 'transformers', 'faiss') or m == 'numpy.ma')\n"
        "print(json.dumps({'status': r['status'], 'command': (r['plan'] or {}).get('command'),"
        " 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True, env={**os.environ, "RAG_K8S_PLANNER": "template"})
    body = json.loads(out.stdout.strip().splitlines()[-1])
    assert body["heavy"] == [], out.stderr[-3000:]
    assert body == {"status": "planned", "heavy": [],
                    "command": "kubectl rollout restart deployment/api -n prod"}


# ---------------------------------------------------------------- a missing or stale export


@pytest.fixture
def small(tmp_path: Path) -> Settings:
    cards = tmp_path / "cards"
    shutil.copytree(ASSET_CARDS, cards)
    return Settings.resolve(home=tmp_path / "home", cards_dir=cards)


def test_build_index_exports_the_model_once_and_reuses_it(small: Settings) -> None:
    index.build_index(small, progress=False)
    export = small.index_dir / "embedder"
    manifest = json.loads((export / "export.json").read_text())
    assert manifest["source"] == embed.source_identity()
    assert sorted(p.name for p in export.iterdir()) == [
        "export.json", "model.onnx", "model.opt.onnx", "model.opt.onnx.data", "tokenizer.json"]
    # The optimised graph keeps its weights outside (memory-mapped at load): a few KB of graph.
    assert (export / "model.opt.onnx").stat().st_size < 1_000_000
    assert (export / "model.opt.onnx.data").stat().st_size > 80_000_000
    before = (export / "model.opt.onnx").stat().st_ino

    index.build_index(small, progress=False, force=True)  # every card again, not the model
    assert (export / "model.opt.onnx").stat().st_ino == before


def test_a_missing_export_is_named_with_the_fix_and_rebuilt_by_ensure_index(
    small: Settings,
) -> None:
    index.build_index(small, progress=False)
    shutil.rmtree(small.index_dir / "embedder")
    embed._LOADED.clear()
    index._FRESH.clear()

    with pytest.raises(IndexError_, match=r"no ONNX export .* run `make build-index`"):
        embed.load_embedder(small.index_dir)
    assert index.index_status(small)["problem"].startswith("stale: no ONNX export")
    loaded, _ = index.ensure_index(small)  # like a stale index: rebuilt where torch is installed
    assert embed.export_problem(small.index_dir) is None
    assert loaded.manifest["embedder"] == json.loads(
        (small.index_dir / "embedder" / "export.json").read_text())["graph_sha256"]


def _without_torch(code: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh process where `import torch` fails, as on a torch-less install."""
    prelude = ("import sys\nsys.modules['torch'] = None\n"
               "from rag_k8s.config import Settings\nfrom pathlib import Path\n"
               f"s = Settings.resolve(home=Path({str(settings.home)!r}), "
               f"cards_dir=Path({str(settings.cards_dir)!r}))\n")
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True,
                          timeout=300)


def test_without_torch_a_missing_export_is_a_clear_error(small: Settings) -> None:
    out = _without_torch("from rag_k8s.embed import ensure_export\nensure_export(s.index_dir)\n",
                         small)
    assert out.returncode != 0
    assert "exporting the embedding model to ONNX needs torch" in out.stderr
    assert "make build-index" in out.stderr


def _retrieves_without_torch_and_mends_the_export(settings: Settings) -> None:
    """A fresh process without torch retrieves the right card, and leaves a usable export."""
    out = _without_torch(
        "from rag_k8s.retrieve import retrieve\n"
        "print(retrieve('restart the api deployment', settings=s)[0].card_id)\n", settings)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["restart-deployment"]
    assert embed.export_problem(settings.index_dir) is None


def test_a_graph_optimised_by_another_onnxruntime_is_reoptimised_without_torch(
    small: Settings,
) -> None:
    index.build_index(small, progress=False)
    path = small.index_dir / "embedder" / "export.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "onnxruntime": "0.0.1"}))
    assert "another onnxruntime version" in (embed.export_problem(small.index_dir) or "")

    _retrieves_without_torch_and_mends_the_export(small)
    assert json.loads(path.read_text())["graph_sha256"] == manifest["graph_sha256"]


def test_an_export_whose_optimised_graph_holds_its_weights_is_reoptimised_without_torch(
    small: Settings,
) -> None:
    """Exports made before the weights moved out of the graph (one 90 MB model.opt.onnx) are
    re-optimised from model.onnx in place: the cards' vectors stay valid (same graph)."""
    index.build_index(small, progress=False)
    export = small.index_dir / "embedder"
    (export / "model.opt.onnx.data").unlink()
    assert "lacks model.opt.onnx.data" in (embed.export_problem(small.index_dir) or "")
    _retrieves_without_torch_and_mends_the_export(small)


def test_token_counts_are_the_models_own(real: tuple[Settings, Any, Any]) -> None:
    from rag_k8s.retrieve import count_tokens

    settings, _, _ = real
    reference = index.embedder().tokenizer
    texts = ["kubectl rollout restart deployment/api -n prod", "Ünïcode pods, émojis 🚀",
             " ".join(["word"] * 400)]
    # Around the embedder's truncation limit (256): below it the loaded embedder's tokenizer
    # counts, from it the untruncated one must.
    texts += [" ".join(["word"] * n) + " 🚀" * extra for n in (254, 255, 256, 257) for extra in (0, 1)]
    embed.load_embedder(settings.index_dir)
    for text in texts:
        want = len(reference(text, add_special_tokens=False)["input_ids"])
        assert count_tokens(text) == embed.token_count(text) == want, len(text)


def test_prefetch_imports_numpy_on_the_calling_thread_before_its_loader_starts(
    real: tuple[Settings, Any, Any],
) -> None:
    """The loader thread imports onnxruntime (and so numpy) while the caller reads the index
    (numpy again): numpy imported by two threads at once failed with "partially initialized
    module 'numpy._core._multiarray_umath'" in the daemon and MCP tests. prefetch() returns
    only once numpy is whole, in a fresh process where nothing imported it before."""
    settings, _, _ = real
    code = ("import sys, threading\n"
            "from pathlib import Path\n"
            "from rag_k8s import embed\n"
            "assert 'numpy' not in sys.modules\n"
            f"embed.prefetch(Path({str(settings.index_dir)!r}))\n"
            "np = sys.modules.get('numpy')  # whole already, not importing on the loader thread\n"
            "print(np is not None and hasattr(np, 'ndarray'), threading.active_count() == 2)\n"
            "embed.load_embedder(Path(" + repr(str(settings.index_dir)) + "))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout.split()) == (0, ["True", "True"]), out.stderr
