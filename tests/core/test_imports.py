"""Imports flow one way (DESIGN.md): curator/ never imports api/ or trainer/; the trainer imports Ray only
in ray_train.py."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_curator_imports_neither_api_nor_trainer():
    bad = {str(p.relative_to(REPO)): sorted(_imports(p) & {"api", "trainer"})
           for p in (REPO / "curator").rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_trainer_imports_ray_only_in_ray_train():
    users = sorted(str(p.relative_to(REPO)) for p in (REPO / "trainer").rglob("*.py") if "ray" in _imports(p))
    assert users in ([], ["trainer/ray_train.py"])
