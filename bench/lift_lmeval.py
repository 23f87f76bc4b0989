"""lm-evaluation-harness on an exported model: a local task made from the curation-lift MC set.

``python bench/lift_lmeval.py --hf HF_DIR --mc mc.jsonl --out OUT [--lm-eval-python PY]`` writes
``OUT/tasks/lift_mc.yaml`` (an lm-eval ``multiple_choice`` task over the JSONL file, read with the
``json`` dataset builder, so nothing is downloaded), runs ``lm_eval --model hf`` on the exported folder
(offline, on the CPU) with the Python of the environment lm-eval is installed in (its dependencies need
not fit ours: a separate venv), and writes ``OUT/lmeval.json`` with lm-eval's accuracy beside our own
scorer's on the same questions. The questions' choices carry their leading space, so the task's target
delimiter is empty; lm-eval's ``acc`` sums the choice's token log-probabilities like our ``accuracy``
(its ``acc_norm`` divides by the choice's characters, ours by its tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TASK = """task: lift_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: choices
doc_to_target: answer
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_task(mc: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "lift_mc.yaml"
    path.write_text(TASK.format(data=str(mc.resolve())))
    return path


def run_lm_eval(python: str, hf: Path, task_yaml: Path, out: Path, limit: int = 0) -> dict:
    cmd = [python, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={hf},dtype=float32",
           "--tasks", "lift_mc", "--include_path", str(task_yaml.parent.resolve()), "--device", "cpu",
           "--batch_size", "16", "--output_path", str(out / "lm_eval_out")]
    if limit:
        cmd += ["--limit", str(limit)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    (out / "lm_eval.log").write_text(p.stdout + "\n" + p.stderr)
    if p.returncode:
        raise RuntimeError(f"lm_eval failed ({p.returncode}):\n{p.stderr[-3000:]}")
    found = sorted((out / "lm_eval_out").rglob("results_*.json"))
    res = json.loads(found[-1].read_text())["results"]["lift_mc"]
    return {"command": " ".join(cmd), "acc": res.get("acc,none"), "acc_stderr": res.get("acc_stderr,none"),
            "acc_norm": res.get("acc_norm,none"), "table": p.stdout[-1500:]}


def ours(hf: Path, mc: Path, limit: int = 0) -> dict:
    """Our scorer on the same questions and the same float32 weights: the exported folder through
    transformers, behind the call signature our scorer uses (ids -> logits)."""
    from types import SimpleNamespace

    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    from trainer.evaluate import score_multiple_choice

    class Logits(torch.nn.Module):
        def __init__(self, m) -> None:
            super().__init__()
            self.m = m
            self.cfg = SimpleNamespace(block_size=m.config.max_position_embeddings)

        def forward(self, x):
            return self.m(input_ids=x).logits

    model = Logits(AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)).eval()
    tok = Tokenizer.from_file(str(hf / "tokenizer.json"))
    return score_multiple_choice(model, tok, mc, torch.device("cpu"), limit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hf", required=True, help="a folder written by python -m trainer export")
    ap.add_argument("--mc", required=True, help="the multiple-choice JSONL")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lm-eval-python", default=sys.executable, help="python of the venv lm-eval is in")
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    task_yaml = write_task(Path(a.mc), out / "tasks")
    res = {"lm_eval": run_lm_eval(a.lm_eval_python, Path(a.hf).resolve(), task_yaml, out, a.limit)}
    os.environ["HF_HUB_OFFLINE"] = "1"
    res["ours"] = ours(Path(a.hf), Path(a.mc), a.limit)
    (out / "lmeval.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
