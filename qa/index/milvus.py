"""The `milvus` store backend: one Milvus collection per index version, an alias naming the live one.

The same code talks to milvus-lite (``milvus_uri = "./milvus.db"``: a local folder, one process; tests and
CI), to a ``milvus-lite server`` process on 127.0.0.1 (several workers on one host; `qa serve --workers`
starts it) and to a Milvus standalone or cluster (``milvus_uri = "http://host:19530"``).

Per version, two collections:

- ``<prefix>__v<time>_<rand>``: one row per passage. ``row`` (INT64, primary key: the passage's row, as in
  the embedded backend), ``id``, ``doc`` (INVERTED index; filters are ``doc in [...]`` expressions),
  ``year``, ``passage`` (the passage as JSON), ``dense`` (FLOAT_VECTOR, inner product = cosine, the
  vectors are normalised) and ``lex`` (SPARSE_FLOAT_VECTOR, inner product).
- ``<version>__meta``: key/value rows (manifest, vocabulary with document frequencies, source texts),
  and last a ``complete`` row.

``lex`` holds BM25 weights computed here at build time from the project's own tokens
(qa.text.tokenize) with the version's N, df and average length baked in: the very impacts bm25s computes
for the embedded backend (taken from its matrix), so both backends rank alike. Milvus's own BM25
function was not used: milvus-lite tokenises differently from our tokenizer and from a Milvus server
(no NFKC, no traditional-to-simplified, punctuation kept), ignores k1/b and keeps per-segment statistics
(docs/milvus notes). A query is the sparse vector {term id: 1.0}; its inner product with ``lex`` is the
passage's BM25 score.

A build writes a new version, checks its row count, writes the meta rows and the ``complete`` marker, and
only then moves the alias (``alter_alias`` is atomic), so a build killed at any moment leaves the alias on
the previous, complete version. Old versions are dropped by their concrete names, keeping the previous
one for readers still on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.errors import IndexProblem, QAError
from qa.index.backend import StaleVersion
from qa.index.lexical import LexicalIndex
from qa.index.manifest import FORMAT_VERSION, Manifest
from qa.index.writer import BuildInput, Progress, VersionRecord, no_progress, version_manifest, writer_lock
from qa.types import DocumentInfo, Passage

if TYPE_CHECKING:
    from qa.config import Settings

MISSING = "The milvus store needs pymilvus and milvus-lite: pip install 'zhengzhou-qa[milvus]'."
FIX = "run `qa index` to rebuild it"
# Milvus's own rule for collection and alias names (milvus-lite accepts more; we hold both to this one)
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
BATCH = 500  # rows per insert
CHUNK_CHARS = 16_000  # one meta value: under 65,535 bytes even at 4 bytes a character
MAX_JSON_BYTES = 65_535
PASSAGE_CACHE = 50_000  # passages kept per opened version
META_DIM = 2  # Milvus refuses a collection without a vector field: the meta collection carries a dummy one


def require_pymilvus() -> Any:
    """The pymilvus module, or the one-sentence QAError naming the extra."""
    try:
        import pymilvus
    except ImportError as exc:
        raise QAError(MISSING) from exc
    return pymilvus


def collection_prefix(kb: str) -> str:
    """The alias (and collection-name prefix) of a knowledge base: ``qa_<ascii slug>_<hash>``."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", kb).strip("_").lower()[:40] or "kb"
    name = f"qa_{slug}_{hashlib.sha1(kb.encode('utf-8')).hexdigest()[:8]}"
    assert NAME_RE.match(name), name
    return name


def is_local(uri: str) -> bool:
    """True for a milvus-lite data folder (a path ending in .db), False for a server URL."""
    return not re.match(r"^(https?|tcp|unix):", uri)


def _literal(value: str) -> str:
    """A string literal for a Milvus filter expression (templated filters fail on milvus-lite)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def doc_filter(docs: Collection[str]) -> str:
    """The filter expression for passages of the given documents."""
    return f"doc in [{', '.join(_literal(d) for d in sorted(docs))}]"


# ----------------------------------------------------------------------------- clients
_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def client_for(settings: Settings) -> Any:
    """One MilvusClient per URI and process (a local milvus.db can be opened by one process only)."""
    uri = settings.milvus_uri
    if is_local(uri):
        if not uri.endswith(".db"):
            raise QAError(
                f"milvus_uri {uri!r} is neither a server URL (http://host:19530) nor a milvus-lite data folder "
                "ending in .db; set milvus_uri to one of them."
            )
        uri = str(Path(uri).expanduser().resolve())
    key = (uri, settings.milvus_token)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            pymilvus = require_pymilvus()
            if is_local(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                client = pymilvus.MilvusClient(uri=uri, token=settings.milvus_token)
            except Exception as exc:
                raise IndexProblem(_unreachable(settings.milvus_uri, exc)) from exc
            _clients[key] = client
        return client


def _unreachable(uri: str, exc: BaseException) -> str:
    if is_local(uri):
        return (
            f"The milvus-lite data folder {uri} could not be opened ({type(exc).__name__}); another process "
            "probably has it open: serve several processes with `qa serve --workers N` (it starts one "
            "milvus-lite server) or point milvus_uri at a Milvus server."
        )
    return (
        f"The Milvus server at {uri} could not be reached ({type(exc).__name__}); start it or fix milvus_uri."
    )


def release(uri: str) -> None:
    """Close the clients of a URI and stop its embedded milvus-lite server (frees the folder's lock)."""
    local = str(Path(uri).expanduser().resolve()) if is_local(uri) else uri
    with _clients_lock:
        for key in [k for k in _clients if k[0] == local]:
            with contextlib.suppress(Exception):
                _clients.pop(key).close()
    if is_local(uri):
        with contextlib.suppress(Exception):
            from milvus_lite import server_manager_instance

            server_manager_instance.release_server(local)


def _call(uri: str, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A Milvus call whose failure becomes one sentence (a dropped version becomes StaleVersion)."""
    try:
        return fn(*args, **kwargs)
    except QAError:
        raise
    except Exception as exc:
        text = str(exc)
        if "not found" in text.lower() or "not exist" in text.lower():
            raise StaleVersion(
                f"The Milvus index version was replaced while it was read ({what}); ask again."
            ) from exc
        raise IndexProblem(
            f"Milvus at {uri} failed while {what} ({type(exc).__name__}: {text[:200]}); check the server, "
            f"or {FIX}."
        ) from exc


# ----------------------------------------------------------------------------- reading
class MilvusStore:
    """One version (a concrete collection) of a knowledge base in Milvus, read-only."""

    def __init__(
        self,
        client: Any,
        uri: str,
        collection: str,
        manifest: Manifest,
        vocab: dict[str, int],
        df: dict[str, int],
        sources: dict[str, int],
        dense_params: dict[str, Any],
        extra: dict[str, int] | None = None,
    ) -> None:
        self.client = client
        self.uri = uri
        self.collection = collection
        self.manifest = manifest
        self.vocab = vocab
        self.df = df
        self._source_chunks = sources
        self._extra_chunks = extra or {}
        self._sources: dict[str, str] = {}
        self._dense_params = dense_params
        self._cache: dict[int, Passage] = {}
        self._cache_lock = threading.Lock()
        self._idf: dict[str, float] | None = None
        self._by_doc = {d: e.passages for d, e in manifest.documents.items()}

    @classmethod
    def open(cls, settings: Settings, prefix: str) -> MilvusStore:
        """The version the knowledge base's alias names; IndexProblem when none or incomplete."""
        client = client_for(settings)
        uri = settings.milvus_uri
        collection = live_collection(client, uri, prefix)
        if collection is None:
            raise IndexProblem(
                f"There is no index in Milvus at {uri} for this knowledge base yet; run `qa index`."
            )
        meta = _read_meta(client, uri, collection)
        if meta.get("complete") != "1":
            raise IndexProblem(f"The Milvus index {collection} at {uri} is incomplete; {FIX}.")
        try:
            toc = json.loads(meta["toc"])
            manifest = Manifest.from_json(_joined(client, uri, collection, "manifest", toc["manifest"]))
            vocab_rows = json.loads(_joined(client, uri, collection, "vocab", toc["vocab"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise IndexProblem(f"The Milvus index {collection} at {uri} is damaged ({exc}); {FIX}.") from exc
        if manifest.format_version != FORMAT_VERSION:
            raise IndexProblem(
                f"The Milvus index at {uri} has format {manifest.format_version}, this program reads format "
                f"{FORMAT_VERSION}; {FIX}."
            )
        state = _call(uri, "checking the collection", client.get_load_state, collection)
        if "NotLoad" in str(state.get("state", "")):  # after a restart every collection is released
            _call(uri, "loading the collection", client.load_collection, collection)
        vocab = {tok: i for i, (tok, _) in enumerate(vocab_rows)}
        df = {tok: int(d) for tok, d in vocab_rows if d > 0}
        return cls(
            client,
            uri,
            collection,
            manifest,
            vocab,
            df,
            toc.get("sources", {}),
            search_params(settings),
            toc.get("extra", {}),
        )

    # -- identity ---------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The concrete collection's name."""
        return self.collection

    def __len__(self) -> int:
        return self.manifest.passages

    # -- top-k --------------------------------------------------------------------------------
    def _search(self, data: Any, field: str, n: int, docs: Collection[str] | None, params: dict) -> Any:
        if n <= 0 or (docs is not None and not docs):
            return []
        kw: dict[str, Any] = {"filter": doc_filter(docs)} if docs is not None else {}
        res = _call(
            self.uri,
            "searching",
            self.client.search,
            self.collection,
            data=[data],
            anns_field=field,
            limit=min(n, 16_384),
            search_params=params,
            output_fields=["row"],
            **kw,
        )
        return res[0] if res else []

    def dense_top(
        self, qvec: np.ndarray, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Milvus dense search (FLAT: exact, like FAISS flat)."""
        hits = self._search(np.asarray(qvec, dtype=np.float32).tolist(), "dense", n, docs, self._dense_params)
        return _unzip(hits)

    def query_vector(self, terms: Sequence[str]) -> dict[int, float]:
        """The sparse query: weight 1 for each known term."""
        return {self.vocab[t]: 1.0 for t in dict.fromkeys(terms) if t in self.vocab}

    def lexical_top(
        self, terms: Sequence[str], n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Milvus sparse search over the BM25 weights: only passages sharing a term come back."""
        q = self.query_vector(terms)
        if not q:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows, scores = _unzip(self._search(q, "lex", n, docs, {"metric_type": "IP"}))
        keep = scores > 0
        return rows[keep], scores[keep]

    # -- given candidates -----------------------------------------------------------------------
    def _get(self, rows: Sequence[int], fields: list[str]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        ids = [int(r) for r in dict.fromkeys(rows)]
        for a in range(0, len(ids), 1000):
            got = _call(
                self.uri,
                "reading passages",
                self.client.get,
                self.collection,
                ids=ids[a : a + 1000],
                output_fields=["row", *fields],
            )
            for e in got:
                out[int(e["row"])] = e
        missing = [r for r in ids if r not in out]
        if missing:
            raise StaleVersion(
                f"Passages {missing[:3]} are missing from the Milvus index {self.collection}; ask again."
            )
        return out

    def dense_scores(self, qvec: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """Cosine per row: the stored vectors dotted with the query here (one round trip)."""
        if not len(rows):
            return np.zeros(0)
        got = self._get(rows, ["dense"])
        q = np.asarray(qvec, dtype=np.float32)
        return np.asarray(
            [float(np.dot(np.asarray(got[int(r)]["dense"], dtype=np.float32), q)) for r in rows],
            dtype=np.float64,
        )

    def lexical_scores(self, terms: Sequence[str], rows: Sequence[int]) -> np.ndarray:
        """BM25 per row: the stored weights of the question's terms, added in the question's term order."""
        q = list(self.query_vector(terms))
        out = np.zeros(len(rows), np.float32)
        if not q or not len(rows):
            return out
        got = self._get(rows, ["lex"])
        for i, r in enumerate(rows):
            vec = got[int(r)]["lex"]
            acc = np.float32(0.0)
            for t in q:
                w = vec.get(t)
                if w is not None:
                    acc = np.float32(acc + np.float32(w))
            out[i] = acc
        return out

    def passages_at(self, rows: Sequence[int]) -> list[Passage]:
        """Passages by row, fetched in one round trip and kept for the version's lifetime (bounded)."""
        with self._cache_lock:
            missing = [int(r) for r in rows if int(r) not in self._cache]
        if missing:
            got = self._get(missing, ["passage"])
            fresh = {r: Passage.from_dict(json.loads(e["passage"])) for r, e in got.items()}
            with self._cache_lock:
                if len(self._cache) + len(fresh) > PASSAGE_CACHE:
                    self._cache.clear()
                self._cache.update(fresh)
                return [self._cache.get(int(r)) or fresh[int(r)] for r in rows]
        with self._cache_lock:
            return [self._cache[int(r)] for r in rows]

    def passage(self, row: int) -> Passage:
        """One passage by row."""
        return self.passages_at([row])[0]

    def row_of(self, passage_id: str) -> int | None:
        """The row of a passage id (a filtered query)."""
        got = _call(
            self.uri,
            "finding a passage",
            self.client.query,
            self.collection,
            filter=f"id == {_literal(passage_id)}",
            output_fields=["row"],
            limit=1,
        )
        return int(got[0]["row"]) if got else None

    def passages_in(self, docs: Collection[str]) -> int:
        """From the manifest's per-document counts."""
        return sum(self._by_doc.get(d, 0) for d in docs)

    # -- the corpus ----------------------------------------------------------------------------
    def source_text(self, doc: str) -> str:
        """A document's original text, from the meta collection (read once per version)."""
        if doc not in self._sources:
            entry = self.manifest.documents.get(doc)
            if entry is None:
                raise KeyError(doc)
            n = int(self._source_chunks.get(entry.sha256, 0))
            self._sources[doc] = _joined(self.client, self.uri, self.collection, f"source:{entry.sha256}", n)
        return self._sources[doc]

    def extra_file(self, name: str) -> bytes | None:
        """A file the builder stored with the version, from the meta collection."""
        n = int(self._extra_chunks.get(name, 0))
        if n == 0:
            return None
        return _joined(self.client, self.uri, self.collection, f"extra:{name}", n).encode("utf-8")

    def document_infos(self) -> list[tuple[DocumentInfo, int]]:
        """From the manifest."""
        return [(DocumentInfo(**e.info), e.passages) for e in self.manifest.documents.values()]

    def idf(self) -> Mapping[str, float]:
        """Lucene's BM25 idf, from the document frequencies stored with the version."""
        if self._idf is None:
            import math

            n = max(self.manifest.passages, 1)
            self._idf = {t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in self.df.items()}
        return self._idf

    # -- for the builder -----------------------------------------------------------------------
    def _doc_rows(self, doc: str, fields: list[str]) -> list[dict[str, Any]]:
        """A document's rows: the writer numbers passages document after document, in manifest order."""
        start = 0
        for name, entry in self.manifest.documents.items():
            if name == doc:
                got = self._get(range(start, start + entry.passages), fields)
                return [got[r] for r in range(start, start + entry.passages)]
            start += entry.passages
        return []

    def doc_passages(self, doc: str) -> list[Passage]:
        """A document's passages in row order."""
        return [Passage.from_dict(json.loads(e["passage"])) for e in self._doc_rows(doc, ["passage"])]

    def doc_vectors(self, doc: str) -> np.ndarray:
        """A document's vectors in row order."""
        rows = self._doc_rows(doc, ["dense"])
        if not rows:
            return np.zeros((0, self.manifest.dim), np.float32)
        return np.asarray([e["dense"] for e in rows], dtype=np.float32)


def _unzip(hits: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    rows = np.asarray([int(h["row"]) for h in hits], dtype=np.int64)
    scores = np.asarray([float(h["distance"]) for h in hits], dtype=np.float32)
    return rows, scores


# ----------------------------------------------------------------------------- meta rows
def _meta_name(collection: str) -> str:
    return f"{collection}__meta"


def live_collection(client: Any, uri: str, prefix: str) -> str | None:
    """The collection the alias names, or None when the knowledge base has no version yet."""
    aliases = _call(uri, "listing aliases", client.list_aliases)
    if prefix not in (aliases.get("aliases") or []):
        return None
    desc = _call(uri, "reading the alias", client.describe_alias, prefix)
    return str(desc["collection_name"])


def _read_meta(client: Any, uri: str, collection: str) -> dict[str, str]:
    meta = _meta_name(collection)
    if not _call(uri, "checking the version", client.has_collection, meta):
        return {}
    state = _call(uri, "checking the version", client.get_load_state, meta)
    if "NotLoad" in str(state.get("state", "")):
        _call(uri, "loading the version", client.load_collection, meta)
    got = _call(
        uri, "reading the version", client.get, meta, ids=["toc", "complete"], output_fields=["value"]
    )
    return {str(e["key"]): str(e["value"]) for e in got}


def _joined(client: Any, uri: str, collection: str, key: str, chunks: int) -> str:
    """A value stored as `chunks` rows key#0 … key#n-1, joined."""
    if chunks == 0:
        return ""
    keys = [f"{key}#{i}" for i in range(chunks)]
    parts: dict[str, str] = {}
    for a in range(0, len(keys), 100):
        got = _call(
            uri,
            "reading the version",
            client.get,
            _meta_name(collection),
            ids=keys[a : a + 100],
            output_fields=["value"],
        )
        parts.update({str(e["key"]): str(e["value"]) for e in got})
    if len(parts) != len(keys):
        raise IndexProblem(f"The Milvus index {collection} at {uri} is missing parts of '{key}'; {FIX}.")
    return "".join(parts[k] for k in keys)


def _chunks(key: str, text: str) -> list[dict[str, Any]]:
    parts = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or []
    return [{"key": f"{key}#{i}", "value": p, "v": [0.0] * META_DIM} for i, p in enumerate(parts)]


def search_params(settings: Settings) -> dict[str, Any]:
    """Search parameters for the configured dense index."""
    kind = settings.milvus_index.upper()
    params: dict[str, Any] = {"metric_type": "IP"}
    if kind == "HNSW":
        params["params"] = {"ef": 128}
    elif kind == "IVF_FLAT":
        params["params"] = {"nprobe": 64}
    return params


def _dense_index(settings: Settings) -> tuple[str, dict[str, Any]]:
    kind = settings.milvus_index.upper()
    if kind == "HNSW":
        return kind, {"M": 32, "efConstruction": 200}
    if kind == "IVF_FLAT":
        return kind, {"nlist": 1024}
    if kind in ("FLAT", "AUTOINDEX"):
        return kind, {}
    raise QAError(f"Unknown milvus_index '{settings.milvus_index}'; use FLAT, HNSW, IVF_FLAT or AUTOINDEX.")


# ----------------------------------------------------------------------------- writing
class MilvusTarget:
    """Where a knowledge base's versions are written in Milvus; the writer's lock stays in its index folder."""

    def __init__(self, settings: Settings, index_dir: Path, kb: str) -> None:
        self.settings = settings
        self.index_dir = index_dir
        self.kb = kb
        self.prefix = collection_prefix(kb)

    @property
    def uri(self) -> str:
        """Where Milvus is."""
        return self.settings.milvus_uri

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The one-writer lock: a file lock in the knowledge base's index folder (shared by every worker)."""
        return writer_lock(self.index_dir)

    def open(self) -> MilvusStore:
        """The live version."""
        return MilvusStore.open(self.settings, self.prefix)

    def live_version(self) -> str | None:
        """The collection the alias names (one small call)."""
        try:
            return live_collection(client_for(self.settings), self.uri, self.prefix)
        except QAError:
            return None

    def versions(self) -> list[str]:
        """Every version collection of this knowledge base, oldest first (names sort by time)."""
        client = client_for(self.settings)
        names = _call(self.uri, "listing collections", client.list_collections)
        return sorted(n for n in names if n.startswith(self.prefix + "__v") and not n.endswith("__meta"))

    def write(
        self,
        docs: Sequence[BuildInput],
        vectors: np.ndarray,
        record: VersionRecord,
        *,
        progress: Progress = no_progress,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> str:
        """Write a complete new version (collection + meta), then move the alias onto it."""
        pymilvus = require_pymilvus()
        client = client_for(self.settings)
        passages = [p for d in docs for p in d.passages]
        assert vectors.shape[0] == len(passages)
        name = f"{self.prefix}__v{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:6]}"
        meta = _meta_name(name)
        try:
            progress("建立 BM25 词法权重", None)
            lexical = LexicalIndex.build([p.embed_text for p in passages])
            vocab_rows, weights = _sparse_rows(lexical, len(passages))
            self._create_passage_collection(client, pymilvus.DataType, name, int(record.model.dim))
            self._insert_passages(client, name, passages, vectors, weights, progress)
            self._check_count(client, name, len(passages))
            progress("写入索引信息", None)
            self._create_meta_collection(client, pymilvus.DataType, meta)
            manifest = version_manifest(docs, record, files={})
            self._insert_meta(client, meta, self._meta_rows(manifest, vocab_rows, docs, extra_files))
            progress("切换到新版本", None)
            self._make_live(client, name)
        except BaseException:
            # the alias still names the previous version; the half-written one must not linger
            with contextlib.suppress(Exception):
                if live_collection(client, self.uri, self.prefix) != name:
                    _drop(client, name)
            raise
        self.prune()
        return name

    def _create_passage_collection(self, client: Any, dt: Any, name: str, dim: int) -> None:
        """Create a version's passage collection: its fields and its dense, sparse and `doc` indexes."""
        kind, build_params = _dense_index(self.settings)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row", dt.INT64, is_primary=True)
        schema.add_field("id", dt.VARCHAR, max_length=512)
        schema.add_field("doc", dt.VARCHAR, max_length=1024)
        schema.add_field("year", dt.INT64, nullable=True)
        schema.add_field("passage", dt.VARCHAR, max_length=MAX_JSON_BYTES)
        schema.add_field("dense", dt.FLOAT_VECTOR, dim=dim)
        schema.add_field("lex", dt.SPARSE_FLOAT_VECTOR)
        ip = client.prepare_index_params()
        ip.add_index(field_name="dense", index_type=kind, metric_type="IP", params=build_params)
        ip.add_index(field_name="lex", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        ip.add_index(field_name="doc", index_type="INVERTED")
        _call(
            self.uri,
            "creating a version",
            client.create_collection,
            name,
            schema=schema,
            index_params=ip,
            consistency_level="Strong",
        )

    def _insert_passages(
        self,
        client: Any,
        name: str,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        weights: Sequence[dict[int, float]],
        progress: Progress,
    ) -> None:
        """Insert one row per passage, BATCH rows at a time, reporting progress before each batch."""
        for a in range(0, len(passages), BATCH):
            progress(f"写入 Milvus {a}/{len(passages)}", a / max(len(passages), 1))
            rows = [
                _passage_row(i, passages[i], vectors[i], weights[i])
                for i in range(a, min(a + BATCH, len(passages)))
            ]
            _call(self.uri, "inserting passages", client.insert, name, rows)

    def _check_count(self, client: Any, name: str, expected: int) -> None:
        """Flush the passage collection and make sure it holds every passage (IndexProblem if not)."""
        uri = self.uri
        _call(uri, "flushing", client.flush, name)
        got = _call(uri, "counting", client.query, name, filter="", output_fields=["count(*)"])
        count = int(got[0]["count(*)"]) if got else -1
        if count != expected:
            raise IndexProblem(f"Milvus at {uri} holds {count} of {expected} passages after writing; {FIX}.")

    def _create_meta_collection(self, client: Any, dt: Any, meta: str) -> None:
        """Create a version's meta collection: key/value rows with the dummy vector Milvus insists on."""
        mschema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        mschema.add_field("key", dt.VARCHAR, is_primary=True, max_length=512)
        mschema.add_field("value", dt.VARCHAR, max_length=MAX_JSON_BYTES)
        mschema.add_field("v", dt.FLOAT_VECTOR, dim=META_DIM)
        mip = client.prepare_index_params()
        mip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
        _call(
            self.uri,
            "creating a version",
            client.create_collection,
            meta,
            schema=mschema,
            index_params=mip,
            consistency_level="Strong",
        )

    def _meta_rows(
        self,
        manifest: Manifest,
        vocab_rows: list[tuple[str, int]],
        docs: Sequence[BuildInput],
        extra_files: Mapping[str, bytes] | None,
    ) -> list[dict[str, Any]]:
        """The meta rows of a version: manifest, vocabulary, each source text once, the extra files, and last
        the table of contents saying how many chunks each of them has."""
        meta_rows = _chunks("manifest", manifest.to_json())
        toc: dict[str, Any] = {"manifest": len(meta_rows), "store": "milvus", "kb": self.kb}
        vocab_chunks = _chunks("vocab", json.dumps(vocab_rows, ensure_ascii=False))
        toc["vocab"] = len(vocab_chunks)
        meta_rows += vocab_chunks
        sources: dict[str, int] = {}
        for d in docs:
            if d.sha256 not in sources:
                part = _chunks(f"source:{d.sha256}", d.original_text)
                sources[d.sha256] = len(part)
                meta_rows += part
        toc["sources"] = sources
        extra: dict[str, int] = {}
        for fname, data in (extra_files or {}).items():
            part = _chunks(f"extra:{fname}", data.decode("utf-8"))  # the builder's files are UTF-8 JSON
            extra[fname] = len(part)
            meta_rows += part
        toc["extra"] = extra
        meta_rows.append({"key": "toc", "value": json.dumps(toc, ensure_ascii=False), "v": [0.0] * META_DIM})
        return meta_rows

    def _insert_meta(self, client: Any, meta: str, meta_rows: list[dict[str, Any]]) -> None:
        """Insert the meta rows 50 at a time, then the `complete` marker, then flush."""
        uri = self.uri
        for a in range(0, len(meta_rows), 50):
            _call(uri, "writing the version's metadata", client.insert, meta, meta_rows[a : a + 50])
        # last, after every other row: a version without this marker is never made live
        _call(
            uri,
            "writing the version's metadata",
            client.insert,
            meta,
            [{"key": "complete", "value": "1", "v": [0.0] * META_DIM}],
        )
        _call(uri, "flushing", client.flush, meta)

    def _make_live(self, client: Any, name: str) -> None:
        """Point the knowledge base's alias at the version (created the first time, moved atomically after)."""
        if live_collection(client, self.uri, self.prefix) is None:
            _call(self.uri, "creating the alias", client.create_alias, name, self.prefix)
        else:
            _call(self.uri, "moving the alias", client.alter_alias, name, self.prefix)

    def prune(self, keep: int = 2) -> None:
        """Drop old and half-written versions by their concrete names, keeping the live one and the one before."""
        client = client_for(self.settings)
        live = live_collection(client, self.uri, self.prefix)
        complete = [
            v for v in self.versions() if v == live or _read_meta(client, self.uri, v).get("complete") == "1"
        ]
        kept = {live} | set([v for v in complete if v != live][-(keep - 1) :] if keep > 1 else [])
        for v in self.versions():
            if v not in kept:
                _drop(client, v)
        # meta collections whose version is gone (a crash between the two drops)
        names = _call(self.uri, "listing collections", client.list_collections)
        for n in names:
            if (
                n.startswith(self.prefix + "__v")
                and n.endswith("__meta")
                and n[: -len("__meta")] not in names
            ):
                with contextlib.suppress(Exception):
                    client.drop_collection(n)

    def drop_all(self) -> None:
        """Remove every version and the alias of this knowledge base (tests, `qa kb drop`)."""
        client = client_for(self.settings)
        if live_collection(client, self.uri, self.prefix) is not None:
            _call(self.uri, "dropping the alias", client.drop_alias, self.prefix)
        for v in self.versions():
            _drop(client, v)


def _drop(client: Any, collection: str) -> None:
    """Drop a version and its meta by concrete name (never through the alias)."""
    for n in (collection, _meta_name(collection)):
        with contextlib.suppress(Exception):
            if client.has_collection(n):
                client.drop_collection(n)


def _passage_row(i: int, p: Passage, vector: np.ndarray, lex: dict[int, float]) -> dict[str, Any]:
    """A passage's row in its version's collection; QAError when its JSON is too long for a Milvus field."""
    body = json.dumps(p.to_dict(), ensure_ascii=False)
    if len(body.encode("utf-8")) > MAX_JSON_BYTES:
        raise QAError(
            f"A passage of {p.doc} is too long for Milvus ({len(body)} characters); lower "
            "chunk_max_chars in qa.toml and run `qa index` again."
        )
    return {
        "row": i,
        "id": p.id,
        "doc": p.doc,
        "year": p.year,
        "passage": body,
        "dense": np.asarray(vector, dtype=np.float32).tolist(),
        "lex": lex,
    }


def _sparse_rows(lexical: LexicalIndex, n: int) -> tuple[list[tuple[str, int]], list[dict[int, float]]]:
    """(vocabulary as (token, df) in id order, one {term id: BM25 impact} per passage) from bm25s's matrix."""
    if n == 0:
        return [], []
    bm25 = lexical.bm25
    sc = bm25.scores
    data, indices, indptr = sc["data"], sc["indices"], np.asarray(sc["indptr"], dtype=np.int64)
    id_to_token = {i: t for t, i in bm25.vocab_dict.items()}
    vocab_rows = [(id_to_token[i], int(lexical.df.get(id_to_token[i], 0))) for i in range(len(indptr) - 1)]
    # CSC (term -> rows) to one dict per row
    term_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    rows_sorted = indices[order]
    starts = np.searchsorted(rows_sorted, np.arange(n + 1))
    out: list[dict[int, float]] = []
    for r in range(n):
        sel = order[starts[r] : starts[r + 1]]
        out.append({int(t): float(w) for t, w in zip(term_of[sel].tolist(), data[sel].tolist(), strict=True)})
    return vocab_rows, out
