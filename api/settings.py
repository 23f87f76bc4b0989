"""Service settings, read from ``CURATOR_*`` environment variables (and a ``.env`` file if present).

Lists (``CURATOR_DATA_ROOTS``, ``CURATOR_TOKENS``, ``CURATOR_ALLOWED_URL_PREFIXES``) are comma-separated;
``CURATOR_JOB_ENV`` is a JSON object. See api/SETTINGS.md for the table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CURATOR_", env_file=".env", extra="ignore")

    ray_address: str | None = Field(
        None,
        description="Ray dashboard (job server) URL, e.g. http://127.0.0.1:8265. Unset: RAY_ADDRESS if it "
        "is an http URL, else `curator serve` starts a local head",
    )
    ray_auth_token: SecretStr | None = Field(
        None, description="token of a Ray cluster with token authentication (RAY_AUTH_TOKEN, ~/.ray/auth_token "
        "if unset)")
    ray_auth_token_file: Path | None = Field(None, description="file holding that token")
    database_url: str | None = Field(None, description="SQLAlchemy URL; unset: sqlite:///<state_dir>/jobs.db")
    db_schema: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="PostgreSQL schema for the service's tables (created if missing)",
    )
    state_dir: Path = Field(Path(".curator"), description="where the job store and submitted specs live")
    data_roots: CsvList = Field(
        default_factory=lambda: ["."],
        description="folders that job inputs and outputs must lie in; relative spec paths resolve against the first",
    )
    allowed_url_prefixes: CsvList = Field(
        default_factory=list, description="remote input prefixes allowed as-is, e.g. s3://bucket/"
    )
    pipelines_dir: Path = Field(Path("pipelines"), description='named specs for {"pipeline": NAME}')
    tokens: CsvList = Field(default_factory=list, description="NAME:TOKEN or NAME:sha256:HEX entries")
    tokens_file: Path | None = Field(None, description="file with one NAME:sha256:HEX (or NAME:TOKEN) per line")
    auth_disabled: bool = Field(False, description="serve without authentication (local experiments only)")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="request body size limit")
    max_body_depth: int = Field(64, ge=4, le=1000, description="nesting limit of JSON and YAML request bodies")
    max_active_jobs_per_token: int = Field(8, ge=1, description="pending+running jobs one token may have")
    job_entrypoint: str = Field("curator", description="command that runs `<cmd> run SPEC` in a Ray job")
    trainer_entrypoint: str = Field("python -m trainer", description="command that starts a training")
    job_env: dict[str, str] = Field(
        default_factory=dict, description="JSON object of env vars for submitted jobs' runtime_env"
    )
    poll_interval_s: float = Field(2.0, gt=0, description="how often job states are refreshed from Ray")
    detail_cache_s: float = Field(
        1.0, ge=0, description="how long one job's GET /v1/jobs/{id} answer is reused by pollers (0: never)")
    host: str = Field("127.0.0.1", description="`curator serve` bind address")
    port: int = Field(8000, ge=0, le=65535, description="`curator serve` port")

    @field_validator("data_roots", "tokens", "allowed_url_prefixes", mode="before")
    @classmethod
    def _split_csv(cls, value):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("data_roots")
    @classmethod
    def _need_root(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one data root is required")
        return value

    def resolved_roots(self) -> list[Path]:
        return [Path(r).expanduser().resolve() for r in self.data_roots]

    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'jobs.db').resolve()}"

    def ray_token(self) -> str | None:
        from api.ray_jobs import find_token

        return find_token(self.ray_auth_token.get_secret_value() if self.ray_auth_token else None,
                          self.ray_auth_token_file)

    def dashboard_address(self) -> str | None:
        if self.ray_address:
            return self.ray_address
        env = os.environ.get("RAY_ADDRESS", "")
        return env if env.startswith(("http://", "https://")) else None
