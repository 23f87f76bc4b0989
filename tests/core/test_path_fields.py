"""Path-typed config fields (curator/paths.py): the walk finds exactly the typed strings, checks run."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from curator.paths import InputPath, ModelRef, OutputDir, PathRole, map_paths, path_fields
from curator.stages.decontaminate import DecontaminateConfig
from curator.stages.pii import PiiConfig


class Inner(BaseModel):
    path: InputPath
    name: str = "x"


class Outer(BaseModel):
    files: list[InputPath | Inner] = []
    by_lang: dict[str, InputPath] = {}
    out: OutputDir | None = None
    model: ModelRef | None = None
    label: str = "path/looking/but/not/a/path"


def _tag(loc: str, role: PathRole, value: str) -> str:
    return f"<{loc}|{role.value}|{value}>"


def test_map_paths_rewrites_only_typed_strings() -> None:
    raw = {"files": ["a.jsonl", {"path": "b/*.jsonl", "name": "b"}], "by_lang": {"en": "en.txt"},
           "out": "o", "model": "m", "label": "keep/me"}
    assert map_paths(Outer, raw, _tag) == {
        "files": ["<files[0]|input|a.jsonl>", {"path": "<files[1].path|input|b/*.jsonl>", "name": "b"}],
        "by_lang": {"en": "<by_lang.en|input|en.txt>"},
        "out": "<out|output_dir|o>",
        "model": "<model|model|m>",
        "label": "keep/me",
    }
    assert raw["files"][0] == "a.jsonl"  # the input is not modified


def test_map_paths_leaves_wrong_shapes_for_validation() -> None:
    raw = {"files": "not-a-list", "by_lang": ["x"], "out": 3}
    assert map_paths(Outer, raw, _tag) == raw


def test_path_fields() -> None:
    assert path_fields(Outer) == {"files": PathRole.INPUT, "by_lang": PathRole.INPUT,
                                  "out": PathRole.OUTPUT_DIR, "model": PathRole.MODEL}
    assert path_fields(PiiConfig) == {"spacy_model": PathRole.MODEL, "cache_dir": PathRole.OUTPUT_DIR}


def test_missing_input_fails_validation(tmp_path) -> None:
    (tmp_path / "b.jsonl").write_text("{}\n")
    DecontaminateConfig(benchmarks=[str(tmp_path / "*.jsonl")])
    with pytest.raises(ValidationError, match="file not found"):
        DecontaminateConfig(benchmarks=[str(tmp_path / "nope.jsonl")])
    with pytest.raises(ValidationError, match="file not found"):
        DecontaminateConfig(benchmarks=[{"path": str(tmp_path / "c*.jsonl")}])


def test_model_ref_is_a_folder_or_installed_package(tmp_path) -> None:
    PiiConfig(spacy_model=str(tmp_path))
    PiiConfig(spacy_model="pyarrow")
    with pytest.raises(ValidationError, match="neither an existing folder nor an installed package"):
        PiiConfig(spacy_model="tmp_not_installed_anywhere")
