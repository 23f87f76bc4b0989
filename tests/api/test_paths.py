"""Data-root confinement on crafted trees: dot-dots, symlinks, globs, folders, URLs."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.paths import Confiner, PathError


@pytest.fixture
def tree(tmp_path):
    root, other, outside = tmp_path / "root", tmp_path / "other", tmp_path / "outside"
    for d in (root / "sub", other, outside):
        d.mkdir(parents=True)
    (root / "a.jsonl").write_text("{}\n")
    (root / "sub" / "b.jsonl").write_text("{}\n")
    (other / "c.jsonl").write_text("{}\n")
    (outside / "secret.jsonl").write_text("{}\n")
    (root / "inner_link.jsonl").symlink_to(root / "a.jsonl")
    return {
        "root": root.resolve(),
        "other": other.resolve(),
        "outside": outside.resolve(),
        "c": Confiner([root, other], ["s3://bucket/"]),
    }


def test_relative_paths_resolve_against_the_first_root(tree):
    c = tree["c"]
    assert c.input_pattern("f", "a.jsonl") == str(tree["root"] / "a.jsonl")
    assert c.input_pattern("f", "sub/*.jsonl") == str(tree["root"] / "sub" / "*.jsonl")
    assert c.input_pattern("f", str(tree["other"] / "c.jsonl")) == str(tree["other"] / "c.jsonl")
    assert c.input_pattern("f", "file://" + str(tree["root"] / "a.jsonl")) == str(tree["root"] / "a.jsonl")
    # a symlink that stays inside the roots is fine; the job gets the resolved target it was checked as
    assert c.input_pattern("f", "inner_link.jsonl") == str(tree["root"] / "a.jsonl")
    assert c.output_dir("o", "out/run1") == str(tree["root"] / "out" / "run1")


@pytest.mark.parametrize(
    "raw", ["../outside/secret.jsonl", "sub/../../outside/secret.jsonl", "sub/..", "s3://bucket/../x"]
)
def test_dot_dot_is_refused(tree, raw):
    with pytest.raises(PathError, match="'..' is not allowed"):
        tree["c"].input_pattern("inputs[0].path", raw)


def test_symlink_escapes_are_refused(tree):
    root, outside, c = tree["root"], tree["outside"], tree["c"]
    (root / "file_link.jsonl").symlink_to(outside / "secret.jsonl")
    (root / "dir_link").symlink_to(outside)
    (root / "sub" / "z.jsonl").symlink_to(outside / "secret.jsonl")
    for raw, msg in (
        ("file_link.jsonl", "outside the data roots"),
        ("dir_link/secret.jsonl", "outside"),
        ("dir_link/*.jsonl", "outside"),
        ("sub/*.jsonl", "resolves outside"),
        ("sub", "resolves outside"),
        ("**/*.jsonl", "resolves outside"),
    ):
        with pytest.raises(PathError, match=msg):
            c.input_pattern("f", raw)
    with pytest.raises(PathError, match="outside"):
        c.output_dir("o", "dir_link/out")


def test_absolute_outside_and_other_refusals(tree):
    c = tree["c"]
    with pytest.raises(PathError, match="outside the data roots"):
        c.input_pattern("f", str(tree["outside"] / "secret.jsonl"))
    with pytest.raises(PathError, match="matches no file"):
        c.input_pattern("f", "nothing/*.jsonl")
    with pytest.raises(PathError, match="not an allowed input prefix"):
        c.input_pattern("f", "s3://other-bucket/x.jsonl")
    assert c.input_pattern("f", "s3://bucket/cc/*.warc.gz") == "s3://bucket/cc/*.warc.gz"
    with pytest.raises(PathError, match="local paths"):
        c.output_dir("o", "s3://bucket/out")
    with pytest.raises(PathError, match="not the root itself"):
        c.output_dir("o", str(tree["other"]))
    with pytest.raises(PathError, match="glob"):
        c.output_dir("o", "out/*")
    with pytest.raises(PathError, match="not a folder"):
        c.output_dir("o", "a.jsonl")
    with pytest.raises(PathError, match="NUL"):
        c.input_pattern("f", "a\x00.jsonl")


def test_confine_spec_rewrites_every_path_and_names_the_field(tree):
    c = tree["c"]
    spec = {
        "inputs": [{"path": ["a.jsonl", "sub/*.jsonl"], "options": {"text_field": "text"}}],
        "stages": [{"stage": "quality_classifier", "model_path": "a.jsonl", "threshold": 0.5}],
        "output": {"path": "out"},
    }
    out = c.confine_spec(spec)
    assert out["inputs"][0]["path"] == [str(tree["root"] / "a.jsonl"), str(tree["root"] / "sub" / "*.jsonl")]
    assert out["inputs"][0]["options"] == {"text_field": "text"}
    assert out["stages"][0] == {
        "stage": "quality_classifier",
        "model_path": str(tree["root"] / "a.jsonl"),
        "threshold": 0.5,
    }
    assert out["output"]["path"] == str(tree["root"] / "out")
    assert spec["output"]["path"] == "out"  # the input is not modified
    bad = dict(spec, stages=[{"stage": "toxicity", "word_lists": {"en": str(tree["outside"] / "secret.jsonl")}}])
    with pytest.raises(PathError) as info:
        c.confine_spec(bad)
    assert info.value.field == "stages[0].word_lists.en"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["sub", "..", ".", "a.jsonl", "*", "dir_link", "out", "b.jsonl", "**"]),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_accepted_paths_always_lie_inside_a_root(tmp_path_factory, parts, absolute):
    base = tmp_path_factory.mktemp("h")
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "a.jsonl").write_text("x")
    (root / "sub" / "b.jsonl").write_text("x")
    (outside / "b.jsonl").write_text("x")
    (root / "dir_link").symlink_to(outside)
    c = Confiner([root])
    raw = os.path.join(str(root) if absolute else "", *parts)
    roots = [root.resolve()]
    try:
        pattern = c.input_pattern("f", raw)
    except PathError:
        pass
    else:
        matches = glob.glob(pattern, recursive=True) or [pattern]
        below = [f for m in matches if os.path.isdir(m) for f in glob.glob(m + "/**/*", recursive=True)]
        for m in matches + below:
            resolved = Path(m).resolve()
            assert any(resolved == r or r in resolved.parents for r in roots), (raw, m)
    try:
        out = Path(c.output_dir("o", raw)).resolve()
    except PathError:
        pass
    else:
        assert root.resolve() in out.parents


def test_benchmark_files_and_objects_are_confined(tree):
    c, root, outside = tree["c"], tree["root"], tree["outside"]
    bench = {"path": "sub/*.jsonl", "name": "mmlu", "fields": ["q"]}
    out = c.stage_params("stages[0]", {"stage": "decontaminate", "benchmarks": ["a.jsonl", bench]})
    # only the object's path is a path: its name and fields are left as they are
    assert out["benchmarks"] == [str(root / "a.jsonl"), {**bench, "path": str(root / "sub" / "*.jsonl")}]
    for bad, field in (
        ([str(outside / "secret.jsonl")], "stages[0].benchmarks[0]"),
        (["a.jsonl", {"path": "../outside/secret.jsonl"}], "stages[0].benchmarks[1].path"),
        (["a.jsonl", {"path": "missing.jsonl"}], "stages[0].benchmarks[1].path"),
    ):
        with pytest.raises(PathError) as info:
            c.stage_params("stages[0]", {"stage": "decontaminate", "benchmarks": bad})
        assert info.value.field == field


def test_cache_folders_may_not_exist_yet_but_stay_inside(tree):
    c, root = tree["c"], tree["root"]
    pii = {"stage": "pii", "engine": "presidio"}
    got = c.stage_params("s", {**pii, "cache_dir": "cache/spacy"})
    assert got == {**pii, "cache_dir": str(root / "cache" / "spacy")}
    assert c.stage_params("s", {**pii, "cache_dir": str(root)}) == {**pii, "cache_dir": str(root)}
    (root / "dir_link").symlink_to(tree["outside"])
    for bad in ("/tmp/elsewhere", "../outside", "dir_link/x", "cache/*"):
        with pytest.raises(PathError, match=r"^s\.cache_dir: "):
            c.stage_params("s", {**pii, "cache_dir": bad})


def test_model_names_must_be_installed_and_model_paths_must_exist_inside(tree, tmp_path, monkeypatch):
    c, root = tree["c"], tree["root"]
    pkgs = tmp_path / "site"
    (pkgs / "xx_fake_model").mkdir(parents=True)
    (pkgs / "xx_fake_model" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(pkgs))
    pii = {"stage": "pii", "engine": "presidio"}
    assert c.stage_params("s", {**pii, "spacy_model": "xx_fake_model"})["spacy_model"] == "xx_fake_model"
    assert c.stage_params("s", {**pii, "spacy_model": "./sub"})["spacy_model"] == str(root / "sub")
    # "tmp" is no installed package and no folder in the root: refused here, never downloaded at run time
    for bad, why in (("tmp", "neither an installed package nor a file"), ("en_core_web_zz", "neither"),
                     ("/etc", "outside"), ("~/models/x", "outside"), ("../outside", "'..'"), ("..", "'..'")):
        with pytest.raises(PathError, match=r"^s\.spacy_model: ") as info:
            c.stage_params("s", {**pii, "spacy_model": bad})
        assert why in str(info.value), (bad, str(info.value))


def test_typed_stage_paths_and_untyped_reader_options(tree):
    c, root = tree["c"], tree["root"]
    # a stage's path fields come from its config types: toxicity word lists and model, langid's model
    tox = c.stage_params("stages[1]", {"stage": "toxicity", "word_lists": {"en": "a.jsonl"}, "model_path": "a.jsonl"})
    assert tox["word_lists"] == {"en": str(root / "a.jsonl")} and tox["model_path"] == str(root / "a.jsonl")
    with pytest.raises(PathError, match=r"^stages\[1\]\.model_path: 'nope.bin' matches no file"):
        c.stage_params("stages[1]", {"stage": "langid", "model_path": "nope.bin"})
    # an unknown stage is left for validation to refuse; a non-path parameter is never touched
    assert c.stage_params("s", {"stage": "nope", "model_path": "/etc/x"}) == {"stage": "nope", "model_path": "/etc/x"}
    assert c.stage_params("s", {"stage": "min_length", "min_chars": 5}) == {"stage": "min_length", "min_chars": 5}
    # reader options carry no types: path-like keys are confined by name
    assert c.file_params("o", {"text_field": "x"}) == {"text_field": "x"}
    with pytest.raises(PathError, match=r"^o\.schema_file: "):
        c.file_params("o", {"schema_file": "/etc/passwd"})


def test_relative_paths_say_where_they_resolved_and_where_they_may_go(tree):
    root, outside = tree["root"], tree["outside"]
    named = Confiner([root]).with_base(outside)  # a named pipeline whose folder is not inside a root
    with pytest.raises(PathError) as info:
        named.output_dir("output.path", "out/quickstart")
    assert str(info.value) == (
        f"output.path: 'out/quickstart' is outside the data roots: relative paths resolve against {outside}, "
        f"giving {outside / 'out' / 'quickstart'}; use a path inside one of {root}"
    )
    with pytest.raises(PathError, match=r"^output\.path: '/tmp/x' is outside the data roots \("):
        named.output_dir("output.path", "/tmp/x")
    assert named.output_dir("output.path", str(root / "out")) == str(root / "out")
    assert Confiner([root]).output_dir("output.path", "out/q") == str(root / "out" / "q")  # the first root
