"""Trainer flags of POST /v1/trainings: names checked, paths confined, command line shell-safe."""

from __future__ import annotations

import shlex

import pytest

from api.paths import Confiner, PathError
from api.training import check_args, command, trainer_options


def test_command_is_shell_safe_and_maps_booleans():
    cmd = command(
        "python -m trainer",
        "/d/out; rm -rf /",
        "/d/run dir",
        {"max_steps": 5, "compile": False, "plot": True, "model": "tiny"},
    )
    assert shlex.split(cmd) == [
        "python",
        "-m",
        "trainer",
        "--data",
        "/d/out; rm -rf /",
        "--run-dir",
        "/d/run dir",
        "--max-steps",
        "5",
        "--no-compile",
        "--plot",
        "--model",
        "tiny",
    ]


def test_check_args_refuses_reserved_unknown_and_malformed(tmp_path):
    c = Confiner([tmp_path])
    for bad in ({"data": "x"}, {"run_dir": "x"}, {"config": "x"}, {"Max": 1}, {"a-b": 1}, {"x;y": 1}):
        with pytest.raises(ValueError, match=r"^args\."):
            check_args(bad, c)
    if trainer_options() is not None:
        with pytest.raises(ValueError, match="args.no_such_option"):
            check_args({"no_such_option": 1}, c)
        assert check_args({"max_steps": 3, "lr": 0.1}, c) == {"max_steps": 3, "lr": 0.1}


def test_path_flags_are_confined(tmp_path):
    (tmp_path / "tok.json").write_text("{}")
    c = Confiner([tmp_path])
    if trainer_options() is not None:
        assert check_args({"tokenizer": "tok.json"}, c) == {"tokenizer": str(tmp_path / "tok.json")}
        with pytest.raises(PathError, match="args.init_from"):
            check_args({"init_from": "/etc/hostname"}, c)
