"""Stage discovery through the `curator.stages` entry-point group, as an outside package would add one."""

from __future__ import annotations

import sys
import textwrap

import pyarrow as pa
import pytest

from curator import registry


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    """An installed-looking distribution (dist-info with entry_points.txt) that declares a stage."""
    (tmp_path / "curator_test_plugin.py").write_text(textwrap.dedent('''
        import pyarrow as pa
        import pyarrow.compute as pc
        from curator.stages.base import Stage, StageConfig, set_drops

        class ShoutConfig(StageConfig):
            drop_word: str = "quiet"

        class Shout(Stage):
            """Upper-case the text; drop documents containing drop_word."""
            name = "shout"
            Config = ShoutConfig

            def __call__(self, table):
                text = table.column("text")
                has = pc.match_substring(text, self.config.drop_word)
                table = table.set_column(table.schema.get_field_index("text"), "text", pc.utf8_upper(text))
                return set_drops(table, pc.if_else(has, "has_drop_word", pa.scalar(None, pa.string())))
    '''))
    dist = tmp_path / "curator_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: curator-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[curator.stages]\nshout = curator_test_plugin:Shout\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.available.cache_clear()
    registry.get.cache_clear()
    yield
    sys.modules.pop("curator_test_plugin", None)
    registry.available.cache_clear()
    registry.get.cache_clear()


def test_entry_point_stage_is_discovered_and_runs(plugin_on_path):
    assert "shout" in registry.available()
    cls = registry.get("shout")
    out = cls(drop_word="quiet")(pa.table({"id": ["a", "b"], "text": ["hello", "be quiet"]}))
    assert out.column("text").to_pylist() == ["HELLO", "BE QUIET"]
    assert out.column("drop_reason").to_pylist() == [None, "has_drop_word"]
    described = {d["name"]: d for d in registry.describe()}
    assert described["shout"]["params"]["properties"]["drop_word"]["default"] == "quiet"


def test_spec_accepts_plugin_stage(plugin_on_path, tmp_path):
    from curator.spec import validate_spec

    spec = validate_spec({"inputs": [{"path": "x.jsonl"}], "stages": [{"stage": "shout", "drop_word": "x"}],
                          "output": {"path": str(tmp_path)}}, check_inputs=False)
    assert spec.stages[0].config.drop_word == "x"


def test_unknown_stage_lists_installed():
    with pytest.raises(registry.UnknownStageError, match="installed stages: .*min_length"):
        registry.get("definitely_not_a_stage")


def test_builtin_min_length_is_registered():
    assert registry.get("min_length").name == "min_length"


def test_builtin_list_matches_the_entry_points_in_pyproject():
    import tomllib
    from pathlib import Path

    from curator.registry import BUILTIN, GROUP

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"][GROUP] == BUILTIN


def test_every_builtin_stage_declares_a_summary_and_its_drop_reasons_are_strings():
    from curator.registry import BUILTIN, get

    for name in BUILTIN:
        cls = get(name)
        assert cls.summary(), f"{name} has no docstring summary"
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in cls.drop_reasons.items())
