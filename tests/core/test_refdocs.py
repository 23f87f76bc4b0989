"""The generated reference docs are committed up to date and name every stage, parameter and spec field."""

from __future__ import annotations

import sys
from pathlib import Path

from curator import readers, refdocs, registry, spec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"
REGENERATE = "regenerate with: python -m curator.refdocs docs/reference"


def test_committed_reference_docs_equal_the_generated_ones():
    for name, text in refdocs.render().items():
        assert (DOCS / name).read_text(encoding="utf-8") == text, f"docs/reference/{name} is stale; {REGENERATE}"
    assert refdocs.check(DOCS) == []


def test_every_builtin_stage_and_parameter_appears():
    text = (DOCS / "stages.md").read_text(encoding="utf-8")
    builtin = [n for n, target in registry.available().items() if target.startswith("curator.")]
    assert sorted(builtin) == refdocs.builtin_stages()
    for name in builtin:
        assert f"## `{name}`\n" in text
        section = text.split(f"## `{name}`\n", 1)[1].split("\n## `", 1)[0]
        cls = registry.get(name)
        for param in cls.Config.model_fields:
            assert f"| `{param}` |" in section, f"{name}.{param}"
        for reason in cls.drop_reasons:
            assert f"| `{reason}` |" in section, f"{name} drop reason {reason}"
        for column in cls.writes:
            assert f"| `{column.name}` |" in section, f"{name} column {column.name}"


def test_every_spec_field_and_reader_option_appears():
    text = (DOCS / "spec.md").read_text(encoding="utf-8")
    for model in (spec.PipelineSpec, spec.InputSpec, spec.StageSpec, spec.StageRayOptions, spec.OutputSpec,
                  spec.RaySpec):
        section = text.split(f"### `{model.__name__}`", 1)[1].split("\n### ", 1)[0]
        for field in model.model_fields:
            assert f"| `{field}` |" in section, f"{model.__name__}.{field}"
    for fmt in readers.FORMATS:
        section = text.split(f"### `{fmt}`\n", 1)[1].split("\n### ", 1)[0]
        for option in readers.reader_options(fmt):
            assert f"| `{option}` |" in section, f"{fmt} option {option}"


def test_every_reader_option_and_spec_field_is_described():
    for fmt in readers.FORMATS:
        docs = sys.modules[readers.reader_for(fmt).__module__].OPTION_DOCS
        assert set(docs) == set(readers.reader_options(fmt)), fmt
        assert all(docs.values()), fmt
    for model in (spec.PipelineSpec, spec.InputSpec, spec.StageSpec, spec.StageRayOptions, spec.OutputSpec,
                  spec.RaySpec):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_check_reports_a_stale_or_missing_file(tmp_path, capsys):
    refdocs.write(tmp_path)
    assert refdocs.main([str(tmp_path), "--check"]) == 0
    stages = tmp_path / "stages.md"
    stages.write_text(stages.read_text(encoding="utf-8").replace("words per shingle", "words per sh1ngle"),
                      encoding="utf-8")
    (tmp_path / "spec.md").unlink()
    assert refdocs.main([str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"{tmp_path / 'spec.md'} is stale (") and "(missing)" in err[0]
    assert err[1].startswith(f"{stages} is stale (4 lines differ; first: -| `ngram` |")
    assert err[1].endswith(f"regenerate with: python -m curator.refdocs {tmp_path}")


def test_ranges_and_types_are_rendered():
    text = (DOCS / "stages.md").read_text(encoding="utf-8")
    langid = text.split("## `langid`\n", 1)[1].split("\n## `", 1)[0]
    assert "| `threshold` | `float` | `0.65` | [0, 1] |" in langid
    assert "| `model_path` | `str (input path) \\| null` | `null` |  |" in langid
    fuzzy = text.split("## `fuzzy_dedup`\n", 1)[1].split("\n## `", 1)[0]
    assert "| `threshold` | `float` | `0.8` | (0, 1) |" in fuzzy
    gopher = text.split("## `gopher_repetition`\n", 1)[1].split("\n## `", 1)[0]
    assert "| keys >= 1; values [0, 1] |" in gopher
