"""Alembic environment: uses the connection the service hands over, else the URL from the settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from api.store import Base

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from api.settings import Settings

    settings = Settings()
    kwargs = {}
    if settings.db_schema and settings.db_url().startswith("postgresql"):
        kwargs["connect_args"] = {"options": f"-csearch_path={settings.db_schema}"}
    engine = create_engine(settings.db_url(), **kwargs)
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_online()
