"""API keys: named, scoped, limited to templates and repositories, expiring; a space's
repository

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ALL_SCOPES = '["read", "deploy", "spaces", "admin"]'


def upgrade() -> None:
    with op.batch_alter_table("tokens") as t:
        # A token made before keys had names keeps its powers, under the name token-<id>.
        t.add_column(sa.Column("name", sa.String(length=63), nullable=True))
        t.add_column(sa.Column("scopes", sa.JSON(), nullable=False, server_default=ALL_SCOPES))
        t.add_column(sa.Column("templates", sa.JSON(), nullable=False, server_default="[]"))
        t.add_column(sa.Column("repositories", sa.JSON(), nullable=False, server_default="[]"))
        t.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        t.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE tokens SET name = 'token-' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("tokens") as t:
        t.alter_column("name", existing_type=sa.String(length=63), nullable=False)
        t.create_unique_constraint("uq_tokens_user_id_name", ["user_id", "name"])
    with op.batch_alter_table("spaces") as t:
        t.add_column(
            sa.Column("repository", sa.String(length=255), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("spaces") as t:
        t.drop_column("repository")
    with op.batch_alter_table("tokens") as t:
        t.drop_constraint("uq_tokens_user_id_name", type_="unique")
        for column in ("last_used_at", "expires_at", "repositories", "templates", "scopes", "name"):
            t.drop_column(column)
