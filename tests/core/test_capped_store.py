"""A run on a local cluster whose object store is capped at Ray's minimum (spilling to a folder of the
spec's) writes exactly what the same spec writes on the uncapped session cluster."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curator.pipeline import run_pipeline
from curator.spec import validate_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
WORDS = ("river stone market winter garden letter window signal harbor lantern meadow engine copper "
         "thunder pocket silver bridge candle forest mirror").split()


def _corpus(folder: Path, files: int = 2, docs: int = 400) -> str:
    """``files`` JSONL files of ``docs`` documents; about one in ten is a copy or a one-word edit of another."""
    rng = random.Random(7)
    folder.mkdir(parents=True)
    made: list[str] = []
    for f in range(files):
        lines = []
        for _ in range(docs):
            if made and rng.random() < 0.1:
                words = rng.choice(made).split()
                words[rng.randrange(len(words))] = rng.choice(WORDS)
                text = " ".join(words)
            else:
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 400)))
                made.append(text)
            lines.append(json.dumps({"text": text}))
        (folder / f"p{f}.jsonl").write_text("\n".join(lines) + "\n")
    return str(folder / "p*.jsonl")


def _spec(inputs: str, out: Path, **ray) -> dict:
    return {"name": "capped", "inputs": [{"path": inputs, "source": "t"}],
            "stages": [{"stage": "min_length", "min_chars": 100}, {"stage": "exact_dedup"},
                       {"stage": "fuzzy_dedup", "threshold": 0.8},
                       {"stage": "split", "eval_fraction": 0.1}],
            "output": {"path": str(out), "shard_size_mb": 0.5}, "ray": {"batch_size": 128, **ray}}


def test_capped_object_store_gives_the_uncapped_output(ray_cluster, tmp_path):
    inputs = _corpus(tmp_path / "in")
    free = run_pipeline(validate_spec(_spec(inputs, tmp_path / "free")))
    spill = tmp_path / "spill"
    spec = _spec(inputs, tmp_path / "capped", object_store_memory=78_643_200, spill_dir=str(spill), num_cpus=2)
    (tmp_path / "capped.yaml").write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "curator", "run", str(tmp_path / "capped.yaml")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    capped = json.loads((tmp_path / "capped" / "manifest.json").read_text())
    assert [(f["path"], f["rows"], f["sha256"]) for f in capped["files"]] == \
        [(f["path"], f["rows"], f["sha256"]) for f in free.manifest["files"]]
    drops = free.manifest["counts"]["drops_by_stage"]
    assert drops["exact_dedup"] and drops["fuzzy_dedup"]  # the corpus exercises both dedup stages
    assert capped["counts"] == free.manifest["counts"]
