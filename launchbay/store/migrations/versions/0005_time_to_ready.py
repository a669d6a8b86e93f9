"""time to ready of each space and service

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("spaces", "services"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("ready_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in ("spaces", "services"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("ready_seconds")
