"""jobs: durable jobs and the schedules of periodic ones

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02

Reviewed by hand: two new tables. `jobs.key` is unique (idempotent enqueue: INSERT … ON CONFLICT (key) DO NOTHING;
NULL keys never conflict). The partial index `ix_jobs_due` holds only claimable rows (queued, or running with a
lease that may lapse) ordered by `run_at`, which is exactly what the claim query scans; done and failed jobs stay out
of it, so it stays small however many finished jobs are kept.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
CLAIMABLE = sa.text("status IN ('queued', 'running')")


def upgrade():
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", TIMESTAMP, nullable=False),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        sa.Column("locked_until", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_jobs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("key", name=op.f("uq_jobs_key")),
    )
    op.create_index("ix_jobs_due", "jobs", ["run_at"], sqlite_where=CLAIMABLE, postgresql_where=CLAIMABLE)
    op.create_table(
        "job_schedules",
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_job_schedules")),
    )


def downgrade():
    op.drop_table("job_schedules")
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.drop_table("jobs")
