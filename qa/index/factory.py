"""Backends behind one factory: `store = "embedded"` (default) or `"milvus"` picks what opens a knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import QAError
from qa.index.backend import STORES, Store, Target

if TYPE_CHECKING:
    from qa.config import Settings


def check_store_setting(settings: Settings) -> None:
    """QAError with the fix when `store` names no backend."""
    if settings.store not in STORES:
        raise QAError(
            f"Unknown store '{settings.store}'; set store to one of {', '.join(STORES)} in qa.toml."
        )


def open_target(settings: Settings, index_dir: str | Path, kb: str = "default") -> Target:
    """The writer's view of a knowledge base's index (its folder for `embedded`, its collections for `milvus`).

    `index_dir` always holds the writer's lock; with `embedded` it also holds the versions."""
    check_store_setting(settings)
    if settings.store == "milvus":
        from qa.index.milvus import MilvusTarget

        return MilvusTarget(settings, Path(index_dir), kb)
    from qa.index.store import EmbeddedTarget

    return EmbeddedTarget(Path(index_dir))


def open_store(settings: Settings, index_dir: str | Path, kb: str = "default") -> Store:
    """The live version of a knowledge base's index; IndexProblem when there is none or it is damaged."""
    return open_target(settings, index_dir, kb).open()
