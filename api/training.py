"""Training jobs: check a request's trainer flags and build the ``python -m trainer`` command line.

Flags are the trainer's own (``trainer.train.TrainConfig`` fields, ``--max-steps 100``); ``data`` and
``run_dir`` are set by the service, and path-valued flags are confined to the data roots like spec paths.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from dataclasses import fields
from functools import cache
from typing import Any

from api.paths import Confiner

RESERVED = frozenset({"data", "run_dir", "config"})
PATH_FLAGS = frozenset({"tokenizer", "init_from"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def trainer_available() -> bool:
    return importlib.util.find_spec("trainer") is not None and importlib.util.find_spec("trainer.train") is not None


@cache
def trainer_options() -> frozenset[str] | None:
    """The trainer's option names, or None when it cannot be imported here (e.g. no torch in the service's
    environment: the job's own argument parsing then has the last word)."""
    try:
        from trainer.train import TrainConfig
    except Exception:  # noqa: BLE001 - any import problem: validate names by shape only
        return None
    return frozenset(f.name for f in fields(TrainConfig))


def check_args(args: dict[str, Any], confiner: Confiner) -> dict[str, Any]:
    """Validated copy of the request's flags; raises ValueError naming ``args.<flag>``."""
    known = trainer_options()
    out: dict[str, Any] = {}
    for key, value in args.items():
        if not _NAME.match(key) or key in RESERVED or (known is not None and key not in known):
            shown = key if _NAME.match(key) else repr(key[:50])
            raise ValueError(f"args.{shown}: not a trainer option the service may set")
        if isinstance(value, str) and ("\x00" in value or len(value) > 4096):
            raise ValueError(f"args.{key}: NUL characters or more than 4096 characters")
        out[key] = confiner.input_pattern(f"args.{key}", value) if key in PATH_FLAGS and value else value
    return out


def command(entrypoint: str, data: str, run_dir: str, args: dict[str, Any]) -> str:
    parts = [entrypoint, "--data", shlex.quote(data), "--run-dir", shlex.quote(run_dir)]
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)
