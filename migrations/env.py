"""Alembic environment: run migrations on the connection chatops hands us (or the URL)."""

from alembic import context
from sqlalchemy import pool

# Importing them adds their tables to db.metadata, which autogenerate compares with.
from chatops import monitor_tables, schedule_tables  # noqa: F401
from chatops.db import make_engine, metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    engine.pool = pool.NullPool(engine.pool._creator)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata,
                          render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


run()
