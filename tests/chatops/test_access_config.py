"""Access rules in job_configs.py: people are 'platform:id', never names; admins and the admin
channel are validated; built-in command words cannot name a namespace."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chatops.config_loader import ConfigError, build_config
from chatops.namespace_config import RESERVED_NAMESPACES

NS = {"jobs": {"j": {"run_args_template": "true"}},
      "slack": [{"command": "go", "help": "h", "action": "schedule_job", "job_type": "j"}]}


def errors_of(raw=None, **extra) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(raw or {"ns": NS}, **extra)
    return info.value.errors


def test_ids_of_every_platform_are_accepted() -> None:
    people = ["slack:U0123ABCD", "slack:W0123ABCD", "telegram:42", "discord:80351110224678912",
              "matrix:@alice:example.org", "console:alice", "web:admin"]
    config = build_config({"ns": {**NS, "allowed_users": people}}, admins=people[:2],
                          admin_channel="slack:C0123ABCD")
    assert config.namespaces["ns"].allowed_users == tuple(people)
    assert config.admins == {"slack:U0123ABCD", "slack:W0123ABCD"}
    assert config.admin_channel == "slack:C0123ABCD"
    assert config.is_admin("slack:U0123ABCD") and not config.is_admin("console:alice")


@pytest.mark.parametrize(("value", "message"), [
    ("alice", "'alice' is a name, and anyone can give themselves a name; access rules use the "
              "id each platform gives a person, written 'platform:id': slack:U0123ABCD (in "
              "Slack: the person's profile → ⋮ → Copy member ID), telegram:123456789"),
    ("U0123ABCD", "'U0123ABCD' looks like a Slack member id: write 'slack:U0123ABCD'"),
    ("42", "'42' is a number: say whose it is, 'telegram:42' or 'discord:42'"),
    ("@bob:example.org", "'@bob:example.org' looks like a Matrix user: write "
                         "'matrix:@bob:example.org'"),
    ("slack:alice", "'alice' is not a slack user id; write it as slack:U0123ABCD"),
    ("telegram:@alice", "'@alice' is not a telegram user id; write it as telegram:123456789"),
    ("discord:alice#1234", "'alice#1234' is not a discord user id"),
    ("matrix:alice", "'alice' is not a matrix user id; write it as matrix:@name:server.example"),
])
def test_names_are_refused_with_how_to_write_the_id(value: str, message: str) -> None:
    [error] = errors_of({"ns": {**NS, "allowed_users": [value]}})
    assert error.startswith(f"namespace 'ns', allowed_users: {message}")
    [error] = errors_of(admins=[value])
    assert error.startswith(f"admins: {message}")


def test_admins_and_admin_channel_are_validated() -> None:
    assert errors_of(admins="slack:U1") == [
        "admins: must be a list of 'platform:id' strings, not str"]
    [error] = errors_of(admin_channel="#ops")
    assert error.startswith("admin_channel: '#ops' is not a channel; write it as 'platform:channel "
                            "id', one of: slack:C0123ABCD (the channel's id, not #name)")
    for good in ("slack:C0123ABCD", "telegram:-1001234", "discord:1234", "matrix:!abc:hs.org",
                 "console:admins"):
        assert build_config({"ns": NS}, admin_channel=good).admin_channel == good


@pytest.mark.parametrize("word", ["run", "users", "cluster", "schedules", "telemetry", "link",
                                  "logs", "cancel", "status", "help", "calc", "calcs"])
def test_built_in_words_cannot_name_a_namespace(word: str) -> None:
    assert word in RESERVED_NAMESPACES
    assert errors_of({word: NS}) == [
        f"namespace {word!r}: {word!r} is a built-in command and cannot name a namespace"]


@pytest.mark.slow
def test_config_check_refuses_an_old_config_that_names_people(chatops, tmp_path: Path) -> None:
    old = tmp_path / "old.py"
    old.write_text(textwrap.dedent("""
        admins = ["alice"]
        admin_channel = "#ops"
        raw_config = {"ns": {"allowed_users": ["alice", "slack:U0123ABCD"],
                             "jobs": {"j": {"run_args_template": "true"}},
                             "slack": [{"command": "go", "help": "h", "action": "schedule_job",
                                        "job_type": "j"}]}}
    """))
    result = chatops("config", "check", str(old))
    assert result.returncode == 1
    assert "3 error(s)" in result.stderr
    assert "  admins: 'alice' is a name, and anyone can give themselves a name" in result.stderr
    assert "  namespace 'ns', allowed_users: 'alice' is a name" in result.stderr
    assert "  admin_channel: '#ops' is not a channel" in result.stderr
    assert "Someone refused is told their id" in result.stderr


def test_every_calculation_command_word_is_reserved() -> None:
    from chatops.calc.admin import ADMIN_WORDS, USER_WORDS

    assert set(ADMIN_WORDS + USER_WORDS) - set(RESERVED_NAMESPACES) == set()
