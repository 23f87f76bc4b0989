"""Stage parameters: every one is described, and out-of-range values are refused with the field's path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import TypeAdapter

from curator import registry
from curator.spec import SpecError, load_spec, validate_spec

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "pipelines").glob("**/*.yaml"))


def _spec(*stages: dict) -> dict:
    return {"inputs": [{"path": "docs.jsonl"}], "stages": [{"stage": "normalize"}, *stages],
            "output": {"path": "out"}}


def _errors(*stages: dict) -> list[str]:
    with pytest.raises(SpecError) as err:
        validate_spec(_spec(*stages), check_inputs=False)
    return err.value.errors


def test_every_stage_and_every_parameter_is_described():
    stages = registry.describe()
    assert {s["name"] for s in stages} == set(registry.available())
    missing = []
    for st in stages:
        assert "error" not in st, st
        assert st["doc"].strip(), f"{st['name']} has no description"
        for name, prop in st["params"].get("properties", {}).items():
            if not prop.get("description", "").strip():
                missing.append(f"{st['name']}.{name}")
    assert missing == []


@pytest.mark.parametrize(("stage", "error"), [
    ({"stage": "langid", "threshold": 2}, "stages[1].threshold: Input should be less than or equal to 1"),
    ({"stage": "langid", "max_chars": 0}, "stages[1].max_chars: Input should be greater than or equal to 1"),
    ({"stage": "pii", "score_threshold": 5}, "stages[1].score_threshold: Input should be less than or equal to 1"),
    ({"stage": "fineweb_quality", "line_punct_thr": -0.1},
     "stages[1].line_punct_thr: Input should be greater than or equal to 0"),
    ({"stage": "fineweb_quality", "short_line_thr": 1.5},
     "stages[1].short_line_thr: Input should be less than or equal to 1"),
    ({"stage": "min_length", "min_chars": -5}, "stages[1].min_chars: Input should be greater than or equal to 0"),
    ({"stage": "min_length", "min_words": -1}, "stages[1].min_words: Input should be greater than or equal to 0"),
    ({"stage": "fuzzy_dedup", "threshold": 1.5}, "stages[1].threshold: Input should be less than 1"),
    ({"stage": "gopher_quality", "min_alpha_words_ratio": 1.2},
     "stages[1].min_alpha_words_ratio: Input should be less than or equal to 1"),
    ({"stage": "gopher_quality", "min_doc_words": -1},
     "stages[1].min_doc_words: Input should be greater than or equal to 0"),
    ({"stage": "gopher_repetition", "max_dup_ngram_char_frac": {5: 1.2}},
     "stages[1].max_dup_ngram_char_frac[5]: Input should be less than or equal to 1"),
    ({"stage": "c4_quality", "max_word_length": 0},
     "stages[1].max_word_length: Input should be greater than or equal to 1"),
    ({"stage": "toxicity", "max_word_ratio": 2}, "stages[1].max_word_ratio: Input should be less than or equal to 1"),
    ({"stage": "toxicity", "classifier_threshold": -0.5},
     "stages[1].classifier_threshold: Input should be greater than or equal to 0"),
    ({"stage": "html_to_text", "cascade_lang_threshold": 1.1},
     "stages[1].cascade_lang_threshold: Input should be less than or equal to 1"),
])
def test_out_of_range_values_are_refused_with_the_field_path(stage, error):
    assert _errors(stage) == [error]


def test_quality_classifier_threshold_is_a_probability(tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"")  # the path must exist; its content is read only when the stage loads
    assert _errors({"stage": "quality_classifier", "model_path": str(model), "threshold": 1.5}) == [
        "stages[1].threshold: Input should be less than or equal to 1"]


def test_every_problem_of_a_spec_is_reported():
    errors = _errors({"stage": "langid", "threshold": 2}, {"stage": "pii", "score_threshold": 5})
    assert errors == ["stages[1].threshold: Input should be less than or equal to 1",
                      "stages[2].score_threshold: Input should be less than or equal to 1"]


def test_bounds_are_inclusive_where_the_rule_allows_it():
    spec = validate_spec(_spec({"stage": "langid", "threshold": 1}, {"stage": "fineweb_quality", "line_punct_thr": 0},
                               {"stage": "min_length", "min_chars": 0}), check_inputs=False)
    assert spec.stages[1].config.threshold == 1
    assert spec.stages[2].config.line_punct_thr == 0
    assert spec.stages[3].config.min_chars == 0


def test_every_default_lies_within_its_parameter_range():
    for name in registry.available():
        for field_name, field in registry.get(name).Config.model_fields.items():
            if field.is_required():
                continue
            annotation = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
            adapter = TypeAdapter(annotation)
            default = field.get_default(call_default_factory=True)
            assert adapter.validate_python(default) == default, f"{name}.{field_name}"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recipe_validates(recipe):
    spec = load_spec(recipe, check_inputs=False)
    assert spec.stages


def test_curator_stages_prints_every_parameter_with_its_description_and_range(capsys):
    from curator.cli import main

    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    assert "    threshold = 0.65  (range [0, 1])\n        probability (0-1) of the best language" in out
    for st in registry.describe():
        assert f"{st['name']:<20} [" in out
        for name, prop in st["params"].get("properties", {}).items():
            assert f"    {name} = " in out, f"{st['name']}.{name}"
            assert f"        {prop['description']}\n" in out, f"{st['name']}.{name}"


def test_curator_stages_into_a_closed_pipe_stops_without_a_traceback():
    """`curator stages | head -n 2`: the reader leaves early; the CLI exits 141 quietly, as cat does."""
    import fcntl
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)  # a one-page pipe: the listing (> 20 kB) cannot fit in it
    proc = subprocess.Popen([sys.executable, "-m", "curator", "stages"], stdout=write, stderr=subprocess.PIPE,
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    os.close(write)
    with os.fdopen(read, "rb") as out:
        assert out.readline()  # `head` has read its line and gone
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
