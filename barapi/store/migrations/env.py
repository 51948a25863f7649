"""Alembic's entry point: barapi runs migrations on a connection it opened (Store.migrate)."""

from alembic import context

connection = context.config.attributes["connection"]
# Batch mode lets SQLite alter tables (it copies them); PostgreSQL alters in place.
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
