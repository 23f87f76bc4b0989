"""The job store: the ``jobs`` table and the ``outputs`` claims, behind SQLAlchemy 2.x (SQLite in WAL mode
by default, PostgreSQL or any SQLAlchemy URL in production). The schema is owned by Alembic
(api/migrations); ``Store.migrate()`` brings a database to the latest revision and runs at service startup.

An output claim says whose jobs write into a folder: the first job submitted with an output path claims it
for its owner (the claim is dropped again if Ray never got that job), and a job of another owner whose
output is that folder, lies inside it or contains it is refused (api/jobs.py). A job ending does not drop
its claim: a finished dataset stays its owner's.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

ACTIVE = ("pending", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ACTIVE + TERMINAL


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("submission_id", name="uq_jobs_submission_id"),
        UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idem"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(16), default="curation")
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    owner: Mapped[str] = mapped_column(String(100), index=True)
    submission_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    body_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    out_dir: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resources: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    final_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    submitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    retry_of: Mapped[str | None] = mapped_column(String(32), nullable=True)


class OutputClaim(Base):
    """An output folder and the owner whose jobs may write there (``key``: sha256 of the path, so that
    paths of any length fit a primary key)."""

    __tablename__ = "outputs"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    job_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)


def path_key(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8")).hexdigest()


class IdempotencyConflict(Exception):
    """The same owner already used this Idempotency-Key; ``job`` is the job it created."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.id)
        self.job = job


def new_job_id() -> str:
    return "j" + uuid.uuid4().hex[:15]


class Store:
    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif schema and url.startswith("postgresql"):
            kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._claims = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------
    def migrate(self) -> None:
        """Create the schema (PostgreSQL ``db_schema``) if needed and upgrade to the latest revision."""
        from alembic import command
        from alembic.config import Config

        here = Path(__file__).resolve().parent
        cfg = Config(str(here / "alembic.ini"))
        cfg.set_main_option("script_location", str(here / "migrations"))
        with self.engine.begin() as conn:
            if self.schema and conn.dialect.name == "postgresql":
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(select(1))

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    # -- writes ----------------------------------------------------------------------------------------
    def create(self, **fields: Any) -> Job:
        """Insert a job. With an ``idempotency_key`` already used by the same owner, raise
        IdempotencyConflict carrying the existing job (also under a concurrent race)."""
        now = time.time()
        fields.setdefault("id", new_job_id())
        fields.setdefault("submission_id", f"curator-{fields['id']}")
        job = Job(created_at=now, updated_at=now, status="pending", cancel_requested=False, **fields)
        try:
            with self.session() as s:
                s.add(job)
        except IntegrityError:
            key = fields.get("idempotency_key")
            existing = self.by_idempotency_key(fields["owner"], key) if key else None
            if existing is None:
                raise
            raise IdempotencyConflict(existing) from None
        return job

    def update(self, job_id: str, **fields: Any) -> Job | None:
        with self.session() as s:
            job = s.scalar(select(Job).where(Job.id == job_id))
            if job is None:
                return None
            for key, value in fields.items():
                setattr(job, key, value)
            job.updated_at = time.time()
        return job

    # -- reads -----------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self.session() as s:
            return s.scalar(select(Job).where(Job.id == job_id))

    def by_idempotency_key(self, owner: str, key: str) -> Job | None:
        with self.session() as s:
            return s.scalar(select(Job).where(Job.owner == owner, Job.idempotency_key == key))

    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> tuple[list[Job], int | None]:
        """Newest first. ``before`` is the ``seq`` cursor returned by the previous page."""
        q = select(Job).order_by(Job.seq.desc()).limit(limit + 1)
        if status:
            q = q.where(Job.status == status)
        if kind:
            q = q.where(Job.kind == kind)
        if owner:
            q = q.where(Job.owner == owner)
        if before is not None:
            q = q.where(Job.seq < before)
        with self.session() as s:
            rows = list(s.scalars(q))
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].seq if more else None)

    def active(self) -> list[Job]:
        with self.session() as s:
            return list(s.scalars(select(Job).where(Job.status.in_(ACTIVE)).order_by(Job.seq)))

    def count_active(self, owner: str) -> int:
        with self.session() as s:
            return (
                s.scalar(select(func.count()).select_from(Job).where(Job.owner == owner, Job.status.in_(ACTIVE))) or 0
            )

    def active_with_output(self, out_dir: str) -> Job | None:
        with self.session() as s:
            return s.scalar(select(Job).where(Job.out_dir == out_dir, Job.status.in_(ACTIVE)).limit(1))

    # -- output claims ---------------------------------------------------------------------------------
    def foreign_claim(self, path: str, owner: str) -> OutputClaim | None:
        """A claim of another owner on ``path``, on a folder above it, or on a folder below it."""
        above = [str(p) for p in PurePosixPath(path).parents] + [path]
        prefix = path.rstrip("/") + "/"
        with self.session() as s:
            return s.scalar(
                select(OutputClaim)
                .where(
                    OutputClaim.owner != owner,
                    OutputClaim.key.in_([path_key(p) for p in above])
                    | (func.substr(OutputClaim.path, 1, len(prefix)) == prefix),
                )
                .order_by(OutputClaim.created_at)
                .limit(1)
            )

    def claim(self, path: str, owner: str, job_id: str) -> tuple[OutputClaim | None, bool]:
        """Claim ``path`` for ``owner`` unless another owner's claim overlaps it: (that claim, False), or
        (None, True) when this call created the claim, (None, False) when the owner held it already."""
        with self._claims:  # one service process: check and insert without a race between owners
            clash = self.foreign_claim(path, owner)
            if clash is not None:
                return clash, False
            try:
                with self.session() as s:
                    if s.get(OutputClaim, path_key(path)) is not None:
                        return None, False
                    s.add(OutputClaim(key=path_key(path), path=path, owner=owner, job_id=job_id,
                                      created_at=time.time()))
            except IntegrityError:  # another service process claimed it just now
                return self.foreign_claim(path, owner), False
            return None, True

    def release(self, path: str, job_id: str) -> None:
        """Drop the claim ``job_id`` made (its submission never reached Ray, so it wrote nothing)."""
        with self.session() as s:
            claim = s.get(OutputClaim, path_key(path))
            if claim is not None and claim.job_id == job_id:
                s.delete(claim)

    def counts_by_status(self) -> dict[tuple[str, str], int]:
        with self.session() as s:
            rows = s.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))
            return {(kind, status): n for kind, status, n in rows}


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
