"""qa.hashing: the one set of byte and file hashes, on real report files and a multi-MiB file."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from qa.hashing import sampled_file_identity, sha256_bytes, sha256_file, sha256_file_cached

pytestmark = pytest.mark.unit

REPORT = Path(__file__).resolve().parent.parent / "documents" / "2024-zhengzhou-government-work-report.txt"


def test_file_and_bytes_agree_with_hashlib() -> None:
    data = REPORT.read_bytes()
    assert sha256_bytes(data) == hashlib.sha256(data).hexdigest() == sha256_file(REPORT)
    # The suffix is hashed after the file's bytes (how a format version names a cache folder).
    assert sha256_file(REPORT, b"converter-2") == hashlib.sha256(data + b"converter-2").hexdigest()


def test_streamed_hash_of_a_file_larger_than_one_block(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = REPORT.read_bytes() * (9 * 2**20 // len(REPORT.read_bytes()) + 1)  # > two 4 MiB blocks
    big.write_bytes(data)
    assert sha256_file(big) == hashlib.sha256(data).hexdigest()


def test_cached_hash_follows_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    shutil.copyfile(REPORT, path)
    first = sha256_file_cached(path)
    assert first == sha256_file(REPORT) and sha256_file_cached(path) == first
    path.write_text(REPORT.read_text(encoding="utf-8") + "\n补充一段。\n", encoding="utf-8")
    assert sha256_file_cached(path) == sha256_file(path) != first


def test_sampled_identity_reads_size_head_and_tail(tmp_path: Path) -> None:
    size = 5 * 2**20
    data = bytearray((REPORT.read_bytes() * (size // len(REPORT.read_bytes()) + 1))[:size])
    a = tmp_path / "a.bin"
    a.write_bytes(data)
    copy = tmp_path / "copy.bin"
    shutil.copyfile(a, copy)
    assert sampled_file_identity(a) == sampled_file_identity(copy)
    for offset in (0, size - 1):  # a change in the first or last MiB is seen
        changed = bytearray(data)
        changed[offset] ^= 1
        copy.write_bytes(changed)
        assert sampled_file_identity(copy) != sampled_file_identity(a)
    middle = bytearray(data)
    middle[size // 2] ^= 1  # the documented blind spot: the middle is not read
    copy.write_bytes(middle)
    assert sampled_file_identity(copy) == sampled_file_identity(a)
    os.truncate(copy, size - 1)
    assert sampled_file_identity(copy) != sampled_file_identity(a)
    small = tmp_path / "small.txt"
    shutil.copyfile(REPORT, small)  # smaller than two samples: read whole, once
    expected = hashlib.sha256(str(small.stat().st_size).encode() + REPORT.read_bytes()).hexdigest()
    assert sampled_file_identity(small) == expected
