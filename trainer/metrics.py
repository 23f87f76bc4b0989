"""What a training run writes about itself: metrics.jsonl, TensorBoard events, progress.json, loss.png.

``<run>/progress.json`` is rewritten atomically (a temporary file, then a rename) at the start, at every
log and eval step and at the end, so a job service can poll it while the run goes on::

    {"state": "running", "step": 120, "max_steps": 1000, "stop_step": 1000, "start_step": 0,
     "train_loss": 3.21, "eval_loss": 3.40, "eval_step": 100, "tokens": 3932160,
     "tokens_per_s": 45210.5, "elapsed_s": 87.0, "eta_s": 638.0, "updated_at": 1764650000.0,
     "checkpoint": null, "error": null}

``state`` is ``running``, ``done`` or ``failed`` (then ``error`` says why); ``eta_s`` is null until a
step has finished; losses are null until the first log / eval record; ``checkpoint`` is the path of the
latest checkpoint written. All numbers are global (every process's tokens).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("trainer")


def write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


class Progress:
    """The run's progress.json (rank 0 only; see the module docstring)."""

    def __init__(self, run_dir: Path, enabled: bool, start_step: int, stop_step: int, max_steps: int) -> None:
        self.path, self.enabled = run_dir / "progress.json", enabled
        self.t0, self.start_step = time.time(), start_step
        self.state = {"state": "running", "step": start_step, "max_steps": max_steps, "stop_step": stop_step,
                      "start_step": start_step, "train_loss": None, "eval_loss": None, "eval_step": None,
                      "tokens": None, "tokens_per_s": None, "elapsed_s": 0.0, "eta_s": None,
                      "updated_at": self.t0, "checkpoint": None, "error": None}
        self._write()

    def _write(self) -> None:
        if self.enabled:
            self.state["updated_at"] = time.time()
            write_json_atomic(self.path, self.state)

    def update(self, rec: dict) -> None:
        """Fold in a metrics record (train or eval) and rewrite the file."""
        s = self.state
        s["step"] = max(s["step"], rec.get("step", 0))
        if "loss" in rec:
            s["train_loss"], s["tokens"], s["tokens_per_s"] = rec["loss"], rec.get("tokens"), rec.get("tok_per_s")
        if "eval_loss" in rec:
            s["eval_loss"], s["eval_step"] = rec["eval_loss"], rec["step"]
        s["elapsed_s"] = time.time() - self.t0
        done = s["step"] - self.start_step
        s["eta_s"] = s["elapsed_s"] / done * (s["stop_step"] - s["step"]) if done > 0 else None
        self._write()

    def checkpointed(self, path: Path) -> None:
        self.state["checkpoint"] = str(path)
        self._write()

    def finish(self, error: str | None = None) -> None:
        s = self.state
        s["state"], s["error"] = ("failed", error) if error else ("done", None)
        s["elapsed_s"] = time.time() - self.t0
        if not error:
            s["eta_s"] = 0.0
        self._write()


class Metrics:
    """metrics.jsonl (rank 0), TensorBoard when importable, the loss-curve PNG at the end."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool, keep_until: int | None) -> None:
        self.enabled, self.path, self.tb = enabled, run_dir / "metrics.jsonl", None
        if not enabled:
            return
        if keep_until is not None and self.path.exists():  # resume: drop what came after the checkpoint
            lines = [ln for ln in self.path.read_text().splitlines()
                     if ln.strip() and json.loads(ln).get("step", 0) <= keep_until]
            self.path.write_text("".join(ln + "\n" for ln in lines))
        elif keep_until is None:
            self.path.write_text("")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:
                log.info("tensorboard not installed: metrics go to metrics.jsonl only")

    def write(self, rec: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k, v in rec.items():
                if k != "step" and isinstance(v, int | float):
                    self.tb.add_scalar(k, v, rec["step"])

    def close(self, plot_to: Path | None) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.enabled and plot_to is not None:
            plot_losses(self.path, plot_to)


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def plot_losses(metrics_path: Path, png: Path) -> bool:
    """Train (and eval) loss against step from a metrics JSONL; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    recs = read_metrics(metrics_path)
    tr = [(r["step"], r["loss"]) for r in recs if "loss" in r]
    ev = [(r["step"], r["eval_loss"]) for r in recs if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if tr:
        ax.plot(*zip(*tr, strict=True), label="train")
    if ev:
        ax.plot(*zip(*ev, strict=True), "o-", label="eval")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return True
