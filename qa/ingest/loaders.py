"""Read one file of documents/ into text: .txt/.md (encoding detected), .pdf, .docx, .html.

Limits (`Limits`, from Settings) hold before the work they bound is done: a .docx's parts are counted
and their unpacked size summed from the zip's directory before anything is unpacked, a PDF's pages are
counted before any text is extracted, and extraction stops at the character limit. `load_file` uses the
limits in force (`use_limits`), so every path that reads a document (start, upload, `qa index`) is bounded.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import struct
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import DocumentError
from qa.hashing import sha256_bytes

if TYPE_CHECKING:
    from qa.config import Settings

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")

# Control characters other than tab/newline/CR: a decoded "text" full of them is binary data.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Limits:
    """What one file may cost to read; 0 switches a limit off."""

    zip_entries: int = 1000
    zip_expanded_bytes: int = 64 * 1024 * 1024
    pdf_pages: int = 2000
    text_chars: int = 5_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits a Settings object sets (max_zip_entries, max_zip_expanded_mb, max_pdf_pages, max_text_chars)."""
        return cls(
            settings.max_zip_entries,
            settings.max_zip_expanded_mb * 1024 * 1024,
            settings.max_pdf_pages,
            settings.max_text_chars,
        )


# Limits is frozen, so one shared default is safe
_LIMITS: ContextVar[Limits] = ContextVar("qa_loader_limits", default=Limits())  # noqa: B039


def current_limits() -> Limits:
    """The limits load_file applies in this thread (the defaults unless `use_limits` says otherwise)."""
    return _LIMITS.get()


@contextlib.contextmanager
def use_limits(limits: Limits) -> Iterator[None]:
    """Apply `limits` to every load_file call made inside the block (in this thread)."""
    token = _LIMITS.set(limits)
    try:
        yield
    finally:
        _LIMITS.reset(token)


def _check_chars(name: str, n: int, limits: Limits) -> None:
    if limits.text_chars and n > limits.text_chars:
        raise DocumentError(
            name,
            f"has more text than the limit ({n:,} characters > max_text_chars {limits.text_chars:,}); "
            "split it into smaller files",
        )


def zip_entry_count(data: bytes) -> int | None:
    """Entries a zip archive declares in its end-of-central-directory record (None if there is none)."""
    tail = data[-(65535 + 22 + 20) :]
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    if count == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        # zip64: the real count is in the zip64 end record the locator points to
        offset = struct.unpack("<Q", tail[at - 12 : at - 4])[0]
        if data[offset : offset + 4] == b"PK\x06\x06" and len(data) >= offset + 40:
            return int(struct.unpack("<Q", data[offset + 32 : offset + 40])[0])
    return int(count)


def check_zip(name: str, data: bytes, limits: Limits) -> None:
    """DocumentError when a zip-based file has too many parts or unpacks to too much, read from its directory.

    Sizes are read from the directory; then every part is unpacked in 64 kB pieces (never more than its
    declared size: a part that lies about it fails its CRC check here, before a reader inflates it whole).
    """
    import io
    import zipfile

    entries = zip_entry_count(data)
    if entries is not None and limits.zip_entries and entries > limits.zip_entries:
        raise DocumentError(
            name,
            f"has {entries:,} parts inside (limit max_zip_entries {limits.zip_entries:,}); it is not a normal document",
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DocumentError(name, f"is not a readable .docx file ({type(exc).__name__})") from exc
    if limits.zip_entries and len(infos) > limits.zip_entries:
        raise DocumentError(
            name,
            f"has {len(infos):,} parts inside (limit max_zip_entries {limits.zip_entries:,}); it is not a normal document",
        )
    expanded = sum(max(i.file_size, 0) for i in infos)
    if limits.zip_expanded_bytes and expanded > limits.zip_expanded_bytes:
        raise DocumentError(
            name,
            f"unpacks to {expanded / 2**20:,.0f} MB (limit max_zip_expanded_mb "
            f"{limits.zip_expanded_bytes // 2**20} MB); it is refused as a possible zip bomb",
        )
    # A part larger than its declared size would still be inflated whole, in memory, by a reader that asks
    # for all of it (python-docx does) before the CRC check fails: unpack each part in small pieces first.
    try:
        with zf:
            for info in infos:
                with zf.open(info) as part:
                    while part.read(1 << 16):
                        pass
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DocumentError(name, f"is not a readable .docx file ({type(exc).__name__}: {exc})") from exc


@dataclass
class RawDocument:
    """A file's decoded text; `pages` = [(start offset in text, page number)] for PDFs."""

    path: Path
    text: str
    encoding: str
    pages: list[tuple[int, int]] | None = None
    sha256: str = ""  # of the bytes that were read (what the index records for the file)


def load_file(path: Path) -> RawDocument:
    """Read a supported file; raise DocumentError (naming the file) with the reason it cannot be used."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            path.name,
            f"unsupported file type '{suffix or '(none)'}'; use one of {', '.join(SUPPORTED_SUFFIXES)}",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path.name, f"cannot be read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise DocumentError(path.name, "the file is empty")
    limits = current_limits()
    if suffix in (".txt", ".md"):
        # a character takes at least one byte: a file within the limit in bytes needs no decoding to know
        if limits.text_chars and len(data) > limits.text_chars:
            _check_chars(path.name, len(data.decode("utf-8", "replace")), limits)
        text, encoding = decode_text(data, path.name)
        doc = RawDocument(path, text, encoding)
    elif suffix == ".pdf":
        doc = _load_pdf(path, data, limits)
    elif suffix == ".docx":
        check_zip(path.name, data, limits)
        doc = _load_docx(path, data)
    else:
        doc = _load_html(path, data)
    _check_chars(path.name, len(doc.text), limits)
    if not doc.text.strip():
        raise DocumentError(path.name, "no text could be extracted from the file")
    doc.sha256 = sha256_bytes(data)
    return doc


def decode_text(data: bytes, name: str = "<bytes>") -> tuple[str, str]:
    """Decode bytes of a text file, detecting BOMs, UTF-8 and GB18030/GBK; return (text, encoding)."""
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _check_text(data.decode(enc), name), enc
            except UnicodeDecodeError as exc:
                raise DocumentError(
                    name, f"starts with a {enc} byte-order mark but is not valid {enc}"
                ) from exc
    if b"\x00" in data:
        from charset_normalizer import from_bytes

        guess = from_bytes(data).best()
        enc = guess.encoding.replace("_", "-") if guess is not None else ""
        if enc.startswith(("utf-16", "utf-32")):  # UTF-16/32 without a byte-order mark
            try:
                return _check_text(data.decode(enc), name), enc
            except UnicodeDecodeError:
                pass
        raise DocumentError(name, "looks like binary data, not text (it contains NUL bytes)")
    try:
        return _check_text(data.decode("utf-8"), name), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    candidates: list[str] = []
    if best is not None:
        enc = best.encoding.lower().replace("_", "-")
        # GB2312 and GBK are subsets of GB18030; decoding with the superset loses nothing.
        candidates.append("gb18030" if enc in {"gb2312", "gbk", "gb18030", "cp936", "hz"} else enc)
    candidates.append("gb18030")
    for enc in candidates:
        try:
            return _check_text(data.decode(enc), name), enc
        except (UnicodeDecodeError, LookupError):
            continue
    raise DocumentError(
        name, "is not text in a known encoding (tried UTF-8, UTF-16, GB18030); save it as UTF-8"
    )


def _check_text(text: str, name: str) -> str:
    """Reject decoded text that is mostly control characters or undecodable garbage."""
    sample = text[:20000]
    if not sample.strip():
        raise DocumentError(name, "the file contains no text")
    bad = len(_CONTROL.findall(sample)) + sample.count("\ufffd")
    if bad > max(8, len(sample) // 50):
        raise DocumentError(name, "looks like binary data, not text")
    return text


def _load_pdf(path: Path, data: bytes, limits: Limits) -> RawDocument:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns loudly on harmless quirks
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception as exc:
                raise DocumentError(path.name, "the PDF is password-protected") from exc
        pages_n = len(reader.pages)
        if limits.pdf_pages and pages_n > limits.pdf_pages:
            raise DocumentError(
                path.name,
                f"has {pages_n:,} pages (limit max_pdf_pages {limits.pdf_pages:,}); split it into smaller files",
            )
        texts: list[str] = []
        chars = 0
        for page in reader.pages:
            texts.append(page.extract_text() or "")
            chars += len(texts[-1])
            _check_chars(path.name, chars, limits)  # stop extracting as soon as the text is too long
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        raise DocumentError(path.name, f"is not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not any(t.strip() for t in texts):
        raise DocumentError(
            path.name, "the PDF has no text layer (scanned images); it needs OCR before it can be indexed"
        )
    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    pos = 0
    for number, t in enumerate(texts, start=1):
        pages.append((pos, number))
        parts.append(t)
        pos += len(t)
        if number < len(texts):
            parts.append("\n")
            pos += 1
    return RawDocument(path, "".join(parts), "pdf", pages)


def _load_docx(path: Path, data: bytes) -> RawDocument:
    import io
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DocumentError(path.name, f"is not a readable .docx file ({type(exc).__name__})") from exc
    except Exception as exc:  # python-docx raises its own PackageNotFoundError and lxml errors
        raise DocumentError(path.name, f"is not a readable .docx file ({type(exc).__name__})") from exc
    lines = []
    for p in document.paragraphs:
        # Word heading styles become Markdown heads so the structure step sees their level.
        style = (p.style.name if p.style is not None else "") or ""
        m = re.match(r"(?:Heading|标题)\s*(\d)", style)
        if style == "Title":
            lines.append("# " + p.text)
        elif m and p.text.strip():
            lines.append("#" * min(6, int(m.group(1)) + 1) + " " + p.text)
        else:
            lines.append(p.text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" ".join(cell.text.strip() for cell in row.cells))
    return RawDocument(path, "\n".join(lines), "docx")


def _load_html(path: Path, data: bytes) -> RawDocument:
    from bs4 import BeautifulSoup

    try:
        soup = BeautifulSoup(data, "html.parser")
    except Exception as exc:
        raise DocumentError(path.name, f"is not readable HTML ({type(exc).__name__})") from exc
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    for tag in soup.find_all(re.compile(r"^h[1-6]$")):
        tag.insert(0, "#" * int(tag.name[1]) + " ")  # keep the heading level for the structure step
    text = soup.get_text("\n")
    text = re.sub(r"\n\s*\n+", "\n", text)
    return RawDocument(path, text.strip("\n"), soup.original_encoding or "utf-8")
