"""The record's id column gets a neutral name: ``transaction_id`` becomes ``record_id``
in both tables (the API names it after params.yaml words; the log does not).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    op.alter_column("predictions", old, new_column_name=new)
    op.alter_column("feedback", old, new_column_name=new)
    if op.get_bind().dialect.name == "postgresql":  # the index follows the column
        op.execute(f"ALTER INDEX ix_predictions_{old} RENAME TO ix_predictions_{new}")
    else:  # SQLite cannot rename an index
        op.drop_index(f"ix_predictions_{old}", "predictions")
        op.create_index(f"ix_predictions_{new}", "predictions", [new])


def upgrade() -> None:
    _rename("transaction_id", "record_id")


def downgrade() -> None:
    _rename("record_id", "transaction_id")
