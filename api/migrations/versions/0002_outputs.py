"""output claims, retry_of; claims backfilled from the jobs that reached Ray

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outputs = op.create_table(
        "outputs",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_outputs_owner", "outputs", ["owner"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("retry_of", sa.String(32), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("seq", sa.Integer()),
        sa.column("id", sa.String()),
        sa.column("owner", sa.String()),
        sa.column("out_dir", sa.Text()),
        sa.column("created_at", sa.Float()),
        sa.column("submitted_at", sa.Float()),
    )
    rows = op.get_bind().execute(
        sa.select(jobs.c.id, jobs.c.owner, jobs.c.out_dir, jobs.c.created_at)
        .where(jobs.c.submitted_at.is_not(None))
        .order_by(jobs.c.seq)
    )
    claims: dict[str, dict] = {}
    for job_id, owner, out_dir, created_at in rows:  # the first job into a folder claims it
        key = hashlib.sha256(out_dir.encode("utf-8")).hexdigest()
        claims.setdefault(
            key, {"key": key, "path": out_dir, "owner": owner, "job_id": job_id, "created_at": created_at}
        )
    if claims:
        op.bulk_insert(outputs, list(claims.values()))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("retry_of")
    op.drop_table("outputs")
