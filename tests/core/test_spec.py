"""Pipeline spec validation: every problem is reported with its field path."""

from __future__ import annotations

import json

import pytest

from curator.spec import SpecError, load_spec, validate_spec


def _spec(tmp_path, **over):
    data_file = tmp_path / "docs.jsonl"
    data_file.write_text('{"text": "hello world"}\n')
    spec = {
        "name": "t",
        "inputs": [{"path": str(data_file)}],
        "stages": [{"stage": "min_length", "min_chars": 5}],
        "output": {"path": str(tmp_path / "out")},
    }
    spec.update(over)
    return spec


def test_valid_spec_round_trips(tmp_path):
    spec = validate_spec(_spec(tmp_path))
    assert spec.stages[0].stage == "min_length"
    assert spec.stages[0].config.min_chars == 5
    again = validate_spec(spec.to_dict())
    assert again.digest() == spec.digest()


def test_unknown_stage_names_the_field(tmp_path):
    with pytest.raises(SpecError) as err:
        validate_spec(_spec(tmp_path, stages=[{"stage": "min_length"}, {"stage": "no_such_stage"}]))
    assert len(err.value.errors) == 1
    assert err.value.errors[0].startswith("stages[1].stage: unknown stage 'no_such_stage'")


def test_bad_stage_parameter_names_the_field(tmp_path):
    with pytest.raises(SpecError) as err:
        validate_spec(_spec(tmp_path, stages=[{"stage": "min_length", "min_chars": -3}]))
    assert err.value.errors[0].startswith("stages[0].min_chars: ")


def test_unknown_stage_parameter_is_an_error(tmp_path):
    with pytest.raises(SpecError) as err:
        validate_spec(_spec(tmp_path, stages=[{"stage": "min_length", "min_charz": 3}]))
    assert err.value.errors == ["stages[0].min_charz: Extra inputs are not permitted"]


def test_a_bad_mapping_key_is_named_as_a_key(tmp_path):
    stage = {"stage": "gopher_repetition", "max_dup_ngram_char_frac": {0: 0.1, 5: 2}}
    with pytest.raises(SpecError) as err:
        validate_spec(_spec(tmp_path, stages=[stage]))
    assert err.value.errors == [
        "stages[0].max_dup_ngram_char_frac[0] (key): Input should be greater than or equal to 1",
        "stages[0].max_dup_ngram_char_frac[5]: Input should be less than or equal to 1",
    ]


def test_structural_errors_report_paths(tmp_path):
    data = _spec(tmp_path)
    data["output"]["rejected_sample"] = 1.5
    data["inputs"][0]["format"] = "docx"
    with pytest.raises(SpecError) as err:
        validate_spec(data)
    joined = "\n".join(err.value.errors)
    assert "output.rejected_sample: Input should be less than or equal to 1" in joined
    assert "inputs[0].format: " in joined


def test_missing_input_glob_is_reported(tmp_path):
    data = _spec(tmp_path, inputs=[{"path": str(tmp_path / "nothing" / "*.jsonl")}])
    with pytest.raises(SpecError) as err:
        validate_spec(data)
    assert err.value.errors[0].startswith("inputs[0].path: ")
    assert "nothing" in err.value.errors[0]
    # without the input check the same spec is structurally fine
    validate_spec(data, check_inputs=False)


def test_load_yaml_and_json_files_with_overrides(tmp_path):
    data = _spec(tmp_path)
    (tmp_path / "s.json").write_text(json.dumps(data))
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    a = load_spec(tmp_path / "s.json")
    b = load_spec(tmp_path / "s.yaml", overrides={"seed": 7, "output": {"shard_size_mb": 1}})
    assert a.seed == 0 and b.seed == 7 and b.output.shard_size_mb == 1
    assert b.output.path == a.output.path


def test_unparseable_file_is_a_spec_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("stages: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(p)


def test_a_misspelled_reader_option_names_the_field_and_the_options(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(SpecError) as err:
        validate_spec({"inputs": [{"path": str(tmp_path / "a.jsonl"), "options": {"text_feild": "body"}}],
                       "output": {"path": str(tmp_path / "out")}})
    assert err.value.errors == ["inputs[0].options.text_feild: not an option of the jsonl reader (its options: "
                                "file_key, id_field, text_field, url_field)"]
    validate_spec({"inputs": [{"path": str(tmp_path / "a.jsonl"), "options": {"text_field": "body"}}],
                   "output": {"path": str(tmp_path / "out")}})


def test_a_file_of_unknown_format_is_a_spec_error_unless_the_format_is_given(tmp_path):
    (tmp_path / "notes.txt").write_text('{"text": "x"}\n')
    spec = {"inputs": [{"path": str(tmp_path / "*.txt")}], "output": {"path": str(tmp_path / "out")}}
    with pytest.raises(SpecError, match=r"inputs\[0\].path: cannot tell the format of .*notes.txt"):
        validate_spec(spec)
    spec["inputs"][0]["format"] = "jsonl"
    validate_spec(spec)


def test_set_reaches_list_items_as_the_pile_recipe_header_says(tmp_path):
    import yaml

    data = _spec(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text('{"text": "hi"}\n')
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    spec = load_spec(tmp_path / "s.yaml", sets=[f"inputs[0].path={other}", "stages[0].min_chars=9",
                                                "stages[-1].ray.num_cpus=2", "output.shard_size_mb=3"])
    assert spec.inputs[0].path == str(other)
    assert spec.stages[0].config.min_chars == 9 and spec.stages[0].ray.num_cpus == 2
    assert spec.output.shard_size_mb == 3


@pytest.mark.parametrize("item, message", [
    ("stages[3].min_chars=1", "--set stages[3].min_chars: stages[3] does not exist (the list has 1 items)"),
    ("inputs.path=x", "--set inputs.path: inputs is not a mapping"),
    ("output[0]=x", "--set output[0]: output is not a list"),
    ("a..b=1", "--set a..b: cannot read the key at '.b' (use a.b, a[0].b)"),
    ("seed", "--set expects KEY=VALUE, got 'seed'"),
])
def test_set_errors_name_the_key(tmp_path, item, message):
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(_spec(tmp_path)))
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "s.yaml", sets=[item])
    assert err.value.errors == [message]
