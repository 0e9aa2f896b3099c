"""task board order: tasks.rank

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Reviewed by hand: a nullable string column (byte order on PostgreSQL: COLLATE "C"), a unique index on
(project_id, status, rank) that orders a board column and keeps one key per place (tasks in no project keep
rank NULL, and NULLs never collide), and a set-based backfill: in every column of every project the newest task
first, keys evenly spaced as finstack.tasks.ranks writes them after a rebalance. One UPDATE ... FROM with a window
function, on SQLite (3.33+) as on PostgreSQL. The key arithmetic is copied here so that this migration keeps doing
what it did whatever the application code becomes.
"""

import functools

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

RANK_TYPE = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")
DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE = len(DIGITS)
SPACING = BASE**2

tasks = sa.table(
    "tasks",
    sa.column("id", sa.Uuid()),
    sa.column("project_id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("date_created", sa.DateTime(timezone=True)),
    sa.column("rank", RANK_TYPE),
)


def _integer(value):
    return sa.literal_column(str(value), sa.BigInteger)


def _key_sql(number, count):
    width = 1
    while BASE**width < (count + 1) * SPACING:
        width += 1
    value = number * _integer(BASE**width // (count + 1))
    digits = [  # substr(text, integer, integer): PostgreSQL has no bigint version
        sa.func.substr(
            DIGITS, sa.cast(value // _integer(BASE ** (width - 1 - place)) % BASE + 1, sa.Integer), 1, type_=sa.String
        )
        for place in range(width)
    ]
    concatenated = functools.reduce(lambda left, right: left.op("||", return_type=sa.String)(right), digits)
    return sa.func.rtrim(concatenated, DIGITS[0], type_=sa.String)


def _backfill():
    connection = op.get_bind()
    in_project = tasks.c.project_id.is_not(None)
    sizes = sa.select(sa.func.count().label("size")).where(in_project).group_by(tasks.c.project_id, tasks.c.status)
    largest = connection.scalar(sa.select(sa.func.max(sizes.subquery().c.size)))
    if not largest:
        return
    number = sa.func.row_number().over(
        partition_by=(tasks.c.project_id, tasks.c.status), order_by=(tasks.c.date_created.desc(), tasks.c.id)
    )
    numbered = sa.select(tasks.c.id, number.label("number")).where(in_project).subquery()
    connection.execute(
        sa.update(tasks).where(tasks.c.id == numbered.c.id).values(rank=_key_sql(numbered.c.number, largest))
    )


def upgrade():
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("rank", RANK_TYPE, nullable=True))
    _backfill()
    op.create_index("ix_tasks_project_id_status_rank", "tasks", ["project_id", "status", "rank"], unique=True)


def downgrade():
    op.drop_index("ix_tasks_project_id_status_rank", table_name="tasks")
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("rank")
