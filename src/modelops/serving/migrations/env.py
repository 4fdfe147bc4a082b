"""Alembic environment: migrates the prediction log database named by the caller."""

from alembic import context

from modelops.serving.predlog import METADATA

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA)
with context.begin_transaction():
    context.run_migrations()
