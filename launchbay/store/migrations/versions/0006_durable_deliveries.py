"""durable webhook deliveries: a pull request's wanted state is a job; spaces record
their origin

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_spaces_origin", ["origin"], unique=False)
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("action", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("generation", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("applied", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("run_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("reported", sa.String(length=160), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("report_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("deployment_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("deployment_sha", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("comment_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_pull_requests_work", ["applied", "generation"], unique=False)
    # What the earlier version recorded was acted on then: nothing is owed for it.
    op.execute("UPDATE pull_requests SET applied = generation, repository = lower(repository)")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pull_request_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("work", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_deliveries_pull_request_id",
            "pull_requests",
            ["pull_request_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_deliveries_pull_request_id", ["pull_request_id"], unique=False)
        batch_op.create_index("ix_deliveries_work", ["status", "event"], unique=False)
    # Deliveries accepted by the earlier version whose work was lost: failed, so that a
    # Redeliver processes them again.
    op.execute(
        "UPDATE deliveries SET status = 'failed', "
        "reason = 'accepted before an upgrade and not finished: redeliver it' "
        "WHERE status = 'accepted'"
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_work")
        batch_op.drop_index("ix_deliveries_pull_request_id")
        batch_op.drop_constraint("fk_deliveries_pull_request_id", type_="foreignkey")
        for column in (
            "finished_at",
            "lease_until",
            "lease_owner",
            "work",
            "generation",
            "pull_request_id",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_pull_requests_work")
        for column in (
            "comment_id",
            "deployment_sha",
            "deployment_id",
            "report_after",
            "reported",
            "reason",
            "lease_until",
            "lease_owner",
            "run_after",
            "attempts",
            "applied",
            "generation",
            "action",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.drop_index("ix_spaces_origin")
        batch_op.drop_column("origin")
