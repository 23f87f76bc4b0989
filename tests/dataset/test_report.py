"""The HTML report: one self-contained page with every section, for any subset of stages."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.axes
import pyarrow as pa
import pytest

from curator import registry
from curator.report import signals_section, stage_params, thresholds_for, write_report
from curator.stages.base import Column, Stage, StageConfig

SECTIONS = ("summary", "funnel", "languages", "signals", "dedup", "split-mix", "decontamination")


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_of_a_full_run_has_every_section_and_figure(crafted_output):
    out, _ = crafted_output
    page = Path(write_report(out)).read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    images = _images(page)
    # funnel (2: counts, drops), languages, 2 signal histograms, cluster sizes, split by source
    assert len(images) == 7
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert "1 clusters of two or more documents; largest 6" in page
    assert "exact_duplicate: 5" in page and "lang_low_score: 5" in page


def test_thresholds_come_from_the_spec_over_stage_defaults():
    manifest = {"spec": {"stages": [
        {"stage": "langid", "threshold": 0.5},
        {"stage": "gopher_quality"},
        {"stage": "gopher_repetition", "max_top_ngram_char_frac": {"2": 0.3}},
        {"stage": "decontaminate_missing_stage", "x": 1},
    ]}}
    params = stage_params(manifest)
    assert thresholds_for("lang_score", params) == [("langid.threshold", 0.5)]
    assert thresholds_for("quality_gopher_word_count", params) == [
        ("gopher_quality.min_doc_words", 50.0), ("gopher_quality.max_doc_words", 100_000.0)]
    assert thresholds_for("quality_gopher_top_2gram_frac", params) == [
        ("gopher_repetition.max_top_ngram_char_frac.2", 0.3)]
    assert thresholds_for("quality_gopher_top_3gram_frac", params) == []  # the spec replaced the dict
    assert thresholds_for("toxicity_word_ratio", params) == []  # no toxicity stage in this run
    assert params["decontaminate_missing_stage"] == {"x": 1}  # unknown stage: the spec's values as given


class _ScorerConfig(StageConfig):
    cutoff: float = 0.5
    floor: float = 0.0


class _Scorer(Stage[_ScorerConfig]):
    """A stage from another package: the report knows its thresholds only from its declaration."""

    name = "scorer"
    writes = (Column("quality_scorer", "a score", thresholds=("cutoff",)),)

    def __call__(self, table: pa.Table) -> pa.Table:
        return table


def test_a_drawn_threshold_comes_from_the_stage_declaration(monkeypatch):
    real = registry.get
    monkeypatch.setattr(registry, "get", lambda name: _Scorer if name == "scorer" else real(name))
    params = stage_params({"spec": {"stages": [{"stage": "scorer", "cutoff": 0.25}]}})
    assert params == {"scorer": {"cutoff": 0.25, "floor": 0.0}}
    assert thresholds_for("quality_scorer", params) == [("scorer.cutoff", 0.25)]  # floor is no threshold
    drawn = []
    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", lambda self, x, **kw: drawn.append((x, kw["label"])))
    signals_section(pa.table({"quality_scorer": [0.1, 0.2, 0.9]}), None, params)
    assert drawn == [(0.25, "scorer.cutoff = 0.25")]
    monkeypatch.setattr(_Scorer, "writes", (Column("quality_scorer", "a score", thresholds=("floor",)),))
    assert thresholds_for("quality_scorer", params) == [("scorer.floor", 0.0)]


def test_report_renders_for_a_run_without_stages(tmp_path, output_writer):
    out = tmp_path / "bare"
    out.mkdir()
    table = pa.table({"id": ["a", "b"], "text": ["one", "two"], "source": ["s", "s"]})
    output_writer(out, table, [], name="bare")
    page = Path(write_report(out)).read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    assert "No <code>lang</code> column" in page
    assert "No quality signal columns" in page
    assert "No <code>dup_cluster</code> column" in page
    assert "No decontamination stage" in page
    assert len(_images(page)) == 3  # funnel counts, reader skips, documents per split


def test_report_without_manifest_reads_no_unlisted_file(tmp_path):
    """Readers trust the manifest, never a directory listing: a shard no manifest lists is not data."""
    (tmp_path / "data").mkdir()
    pa.parquet.write_table(pa.table({"id": ["a"], "text": ["x"], "lang": ["en"], "lang_score": [0.9]}),
                           tmp_path / "data" / "part-00000.parquet")
    page = Path(write_report(tmp_path)).read_text()
    assert "No <code>stats.json</code>" in page
    assert _images(page) == []  # neither the languages nor the lang_score of the unlisted file


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(crafted_output, tmp_path):
    out, _ = crafted_output
    page = Path(write_report(out))
    shot = tmp_path / "shot.png"
    proc = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,2400",
                           f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
