"""chatops.identities on SQLite and PostgreSQL: upserts, opt-in and opt-out."""

from __future__ import annotations

import pytest

from chatops import identities
from tests.support.chat import chat_service


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        return chat_service(tmp_path, CHATOPS_DATABASE_URL=url).queue.engine
    return chat_service(tmp_path).queue.engine


def test_record_and_lookup(engine):
    identities.record(engine, "telegram", "42", "alice", now=100)
    identities.record(engine, "telegram", "42", "Alice A.", now=200)
    identities.record(engine, "discord", "42", "other", now=300)
    row = identities.lookup(engine, "telegram", "42")
    assert (row.display_name, row.created_at, row.updated_at, row.cluster_user) == (
        "Alice A.", 100, 200, None)
    assert identities.lookup(engine, "telegram", "43") is None
    assert identities.bind_cluster_user(engine, "telegram", "42", "alice")
    assert not identities.bind_cluster_user(engine, "telegram", "nobody", "bob")
    assert [(r.platform, r.user_id) for r in identities.by_cluster_user(engine, "alice")] == [
        ("telegram", "42")]


def test_opt_in_out_and_in_again(engine):
    assert not identities.is_opted_in(engine, "telegram", "-100")
    assert not identities.opt_out(engine, "telegram", "-100")
    identities.opt_in(engine, "telegram", "-100", "42", now=10)
    identities.opt_in(engine, "telegram", "-100", "43", now=20)  # a second /start: one row
    assert identities.is_opted_in(engine, "telegram", "-100")
    assert not identities.is_opted_in(engine, "discord", "-100")
    assert identities.opt_out(engine, "telegram", "-100", now=30)
    assert not identities.opt_out(engine, "telegram", "-100", now=40)  # already out
    row = identities.target(engine, "telegram", "-100")
    assert (row.user_id, row.opted_in_at, row.opted_out_at) == ("43", 20, 30)
    identities.opt_in(engine, "telegram", "-100", "42", now=50)
    row = identities.target(engine, "telegram", "-100")
    assert (row.opted_in_at, row.opted_out_at) == (50, None)
