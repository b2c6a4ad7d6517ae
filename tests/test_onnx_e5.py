"""The int8 ONNX backend: its fp32 graph reproduces the plain path, int8 stays close, the cache is atomic."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.encoders import Encoder, load_encoder
from qa.encoders.e5file import default_bin_path, dequantise_rows, read_e5_bin
from qa.encoders.onnx import OnnxE5Encoder, build_graph, int8_columns, materialize_onnx_model
from qa.errors import QAError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from encoder_bench import sample_passages  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory of this module's own, so materialisation is really exercised."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def model_dir(cache: Path) -> Path:
    """The materialised ONNX model directory."""
    return materialize_onnx_model(cache)


@pytest.fixture(scope="module")
def plain(cache: Path) -> Encoder:
    """The default model through plain sentence-transformers fp32: the reference."""
    return load_encoder(Settings(cache_dir=str(cache), embed_backend="sentence-transformers"))


@pytest.fixture(scope="module")
def passages(documents_dir: Path) -> list[str]:
    """About 30 real ~300-character passages spread over the five reports."""
    return sample_passages(documents_dir, 300, 30)


@pytest.mark.integration
def test_materialised_directory_is_complete_and_reused(cache: Path, model_dir: Path) -> None:
    names = {p.name for p in model_dir.iterdir()}
    assert {"model.onnx", "word_q4.npy", "tokenizer.json", "meta.json"} <= names
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    assert meta["hidden"] == 384 and meta["max_tokens"] == 512
    # int8 weights, the word table outside the graph: 21M weights in about 22 MB.
    assert 15e6 < (model_dir / "model.onnx").stat().st_size < 30e6
    t0 = time.perf_counter()
    assert materialize_onnx_model(cache) == model_dir
    assert time.perf_counter() - t0 < 2.0  # found, not rebuilt
    assert not [p for p in (cache / "models").iterdir() if p.name.startswith(".making-")]  # no temp left


@pytest.mark.unit
def test_word_rows_dequantise_like_the_converter() -> None:
    f = read_e5_bin(default_bin_path().read_bytes())
    full = f.tensor("emb.word", (f.vocab, f.hidden))
    blocks = np.frombuffer(f.tensors["emb.word"][2], dtype=np.uint8).reshape(f.vocab, f.hidden // 32, 18)
    assert np.array_equal(f.q4_blocks("emb.word", f.vocab, f.hidden), blocks)
    ids = np.array([0, 1, 2, 6, 12345, f.vocab - 1])
    assert np.array_equal(dequantise_rows(blocks, ids), full[ids])


@pytest.mark.unit
def test_int8_columns_round_trip() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 48)).astype(np.float32)
    w[:, 3] = 0.0  # an all-zero column must not divide by zero
    q, scale = int8_columns(w)
    assert q.dtype == np.int8 and scale.shape == (48,) and np.abs(q).max() == 127
    err = np.abs(q * scale - w).max(axis=0)
    assert (err <= scale / 2 + 1e-7).all() and err[3] == 0.0


@pytest.mark.integration
def test_fp32_graph_reproduces_the_plain_path(
    model_dir: Path, plain: Encoder, passages: list[str], tmp_path: Path
) -> None:
    import onnx

    # The same graph writer in fp32: equal to the plain path, so the int8 graph differs only by quantisation.
    onnx.save_model(
        build_graph(read_e5_bin(default_bin_path().read_bytes()), int8=False), str(tmp_path / "fp32.onnx")
    )
    enc = OnnxE5Encoder(model_dir, fingerprint="t", model_id="t", model_path=tmp_path / "fp32.onnx")
    a = plain.encode_documents(passages)
    b = enc.encode_documents(passages)
    assert (a * b).sum(axis=1).min() >= 0.9999
    questions = ["2023年郑州GDP是多少？", "十四五期间要建成哪些国家级平台？"]
    assert (plain.encode_queries(questions) * enc.encode_queries(questions)).sum(axis=1).min() >= 0.9999


@pytest.mark.integration
def test_int8_graph_stays_close_and_is_order_independent(
    model_dir: Path, plain: Encoder, passages: list[str]
) -> None:
    enc = OnnxE5Encoder(model_dir, fingerprint="t", model_id="t")
    a = plain.encode_documents(passages)
    b = enc.encode_documents(passages, batch_size=4)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.99 and cos.mean() >= 0.995, (cos.min(), cos.mean())
    # A vector depends on its text only: alone, reversed, in groups of 7 (dynamic int8 scales are per call).
    single = np.stack([enc.encode_documents([p])[0] for p in passages[:5]])
    assert np.allclose(single, b[:5], atol=2e-3)
    rev = enc.encode_documents(passages[::-1], batch_size=7)[::-1]
    assert np.allclose(rev, b, atol=2e-3)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)


@pytest.mark.integration
def test_long_and_odd_texts(model_dir: Path) -> None:
    enc = OnnxE5Encoder(model_dir, fingerprint="t", model_id="t")
    report = "郑州市坚持以人民为中心的发展思想。" * 400  # far beyond 512 tokens: truncated, not an error
    odd = ["", "   ", "\x00空字符", "😀🚄", report]
    v = enc.encode_documents(odd)
    assert v.shape == (5, 384) and np.isfinite(v).all()
    with pytest.raises(TypeError):
        enc.encode_queries("not a list")  # type: ignore[arg-type]


@pytest.mark.integration
def test_unwritable_cache_is_one_sentence(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    with pytest.raises(QAError) as info:
        materialize_onnx_model(blocked)
    assert "cache_dir" in str(info.value) and "\n" not in str(info.value)
