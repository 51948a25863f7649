"""The store's schema as ordered, named Alembic migrations, for SQLite and PostgreSQL alike."""
