"""durable jobs, and the node that runs a machine-local space

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KINDS = ("provision", "delete", "sleep", "restart", "redeploy", "reconcile")
STATES = ("queued", "running", "done", "failed")


def upgrade() -> None:
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node", sa.String(length=64), nullable=True))
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(*KINDS, name="jobkind", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(*STATES, name="jobstate", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_claim", "jobs", ["state", "run_after"], unique=False)
    op.create_index("ix_jobs_space", "jobs", ["space_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_space", table_name="jobs")
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.drop_table("jobs")
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.drop_column("node")
