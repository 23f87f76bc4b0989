"""Request and response models: the OpenAPI contract of the service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pending", "running", "succeeded", "failed", "cancelled"]
Kind = Literal["curation", "training"]


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class NamedPipeline(BaseModel):
    """Submit a spec from the service's ``pipelines/`` folder, with optional overrides merged in."""

    model_config = ConfigDict(extra="forbid")
    pipeline: str = Field(pattern=r"^[A-Za-z0-9_-]{1,100}$", description="file name under pipelines/, no suffix")
    overrides: dict[str, Any] = Field(default_factory=dict, description="merged into the spec (deep merge)")


class StageProgress(BaseModel):
    index: int
    name: str
    docs_in: int
    docs_out: int
    chars_in: int
    chars_out: int
    drops: dict[str, int]
    seconds: float = Field(description="stage busy time, summed over workers")
    docs_per_s: float | None = Field(description="docs in per second of busy time")


class InputProgress(BaseModel):
    files: int = 0
    files_done: int = 0
    records: int = 0
    bytes: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)


class UnitProgress(BaseModel):
    total: int = Field(0, description="units of work (input files or fixed splits of one)")
    done: int = 0
    resumed: int = Field(0, description="units an earlier run into this output had finished")


class Progress(BaseModel):
    status: str
    updated_at: datetime | None
    elapsed_s: float | None
    docs_per_s: float | None = Field(description="input records per second of wall time")
    phase: str = Field("", description="the phase running now, e.g. 'phase 1 of 2: fuzzy_dedup'")
    units: UnitProgress = Field(default_factory=UnitProgress)
    eta_s: float | None = Field(None, description="seconds left, from the units finished so far (None: unknown)")
    inputs: InputProgress
    stages: list[StageProgress]
    output: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class ProgressSummary(BaseModel):
    records: int = Field(description="input documents read so far")
    files_done: int
    files: int
    docs_out: int | None = Field(description="documents left after the last stage so far")


class CurvePoint(BaseModel):
    step: int
    loss: float
    tokens_per_s: float | None = None


class LossCurve(BaseModel):
    train: list[CurvePoint] = Field(default_factory=list)
    eval: list[CurvePoint] = Field(default_factory=list)


class TrainingProgress(BaseModel):
    """The trainer's ``progress.json`` and the loss curve from its ``metrics.jsonl``."""

    state: str | None = Field(None, description="running, done or failed")
    step: int | None = None
    max_steps: int | None = None
    stop_step: int | None = None
    train_loss: float | None = None
    eval_loss: float | None = None
    tokens: int | None = None
    tokens_per_s: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    checkpoint: str | None = None
    error: str | None = None
    updated_at: float | None = None
    curve: LossCurve = Field(default_factory=LossCurve)


class JobOut(BaseModel):
    id: str
    kind: Kind
    name: str
    status: Status
    owner: str
    submission_id: str
    output_path: str
    parent_id: str | None = None
    retry_of: str | None = Field(None, description="the job this one retries")
    message: str | None = None
    error: str | None = Field(None, description="a failed job's one-line reason (stage, input file, what went wrong)")
    cancel_requested: bool = False
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    resources: dict[str, Any] | None = None
    summary: ProgressSummary | None = Field(None, description="progress in brief (curation jobs with stats)")


class JobDetail(JobOut):
    spec: dict[str, Any]
    progress: Progress | None = Field(None, description="live per-stage counters (curation jobs)")
    training: TrainingProgress | None = Field(None, description="step, losses, tokens/s, ETA (training jobs)")
    has_manifest: bool = False
    has_report: bool = False


class JobList(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class SubmitResult(BaseModel):
    id: str
    status: Status
    replayed: bool = Field(False, description="true when an Idempotency-Key returned an earlier job")
    job: JobOut


class TrainingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str = Field(pattern=r"^j[0-9a-f]{15}$", description="a finished curation job to train on")
    gpus: float = Field(1, ge=0, le=64, description="GPUs requested from Ray (0: CPU training)")
    cpus: float = Field(1, gt=0, le=256)
    output: str | None = Field(
        None, description="checkpoint folder (inside a data root); default: <first data root>/trainings/<id>"
    )
    args: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description='trainer options (trainer.train.TrainConfig fields): {"max_steps": 100} -> --max-steps 100; '
        "true/false -> --flag/--no-flag",
    )


class StageInfo(BaseModel):
    name: str
    target: str
    kind: str | None = None
    stateful: bool | None = None
    doc: str | None = None
    params: dict[str, Any] | None = None
    error: str | None = None


class SpecErrorOut(BaseModel):
    detail: str
    errors: list[str] = Field(description="one `field.path: problem` line per problem")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
