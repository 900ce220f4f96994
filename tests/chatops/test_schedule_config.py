"""`schedules` in job_configs.py: what is accepted, and every error naming the schedule."""

from __future__ import annotations

from typing import Any

import pytest

from chatops.config_loader import ConfigError, build_config
from chatops.schedule_config import report_target

CHANNELS = ("write it as 'platform:channel id', one of: slack:C0123ABCD (the channel's id, not "
            "#name), telegram:-1001234567890 (the chat id), discord:<channel id>, "
            "matrix:!room:server.example, console:<name> (shown on the dashboard)")


def namespace(*schedules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"ops": {
        "default_channel": "#ops",
        "jobs": {"report": {"run_args_template": "report {site}"},
                 "check": {"run_args_template": "check"}},
        "schedules": list(schedules), **extra}}


def errors_of(*schedules: dict[str, Any], **extra: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        build_config(namespace(*schedules, **extra))
    return caught.value.errors


def test_a_valid_schedule_becomes_a_spec() -> None:
    config = build_config(namespace(
        {"name": "morning", "job_type": "report", "args": {"site": "oslo"},
         "cron": "0 7 * * 1-5", "timezone": "Europe/Oslo", "report_to": "telegram:-100123"},
        {"name": "poll", "job_type": "check", "every": "15m", "misfire": "skip"}))
    morning, poll = config.schedules()
    assert (morning.key, morning.job_type, morning.arguments) == (
        "ops/morning", "ops_report", {"site": "oslo"})
    assert morning.trigger.text == "cron 0 7 * * 1-5 (Europe/Oslo)"
    assert (morning.report_to, morning.misfire) == ("telegram:-100123", "run once")
    assert (poll.trigger.text, poll.report_to, poll.misfire) == ("every 15m", "#ops", "skip")


def test_the_default_channel_goes_to_slack_when_it_is_configured_else_the_console() -> None:
    assert report_target("#ops", slack_configured=True) == ("slack", "#ops")
    assert report_target("#ops", slack_configured=False) == ("console", "#ops")
    assert report_target("matrix:!room:hs.example", slack_configured=True) == (
        "matrix", "!room:hs.example")


def test_every_error_names_the_namespace_schedule_and_key() -> None:
    assert errors_of(
        {"name": "a", "job_type": "report", "args": {"site": "x"}, "cron": "0 25 * * *"},
        {"name": "b", "job_type": "nope", "every": "5m"},
        {"name": "c", "job_type": "report", "args": {"city": "x"}, "every": "5m"},
        {"name": "d", "job_type": "check", "every": "often"},
        {"name": "e", "job_type": "check", "cron": "0 7 * * *", "every": "5m"},
        {"name": "f", "job_type": "check", "every": "5m", "report_to": "irc:#ops"},
        {"name": "g", "job_type": "check", "every": "5m", "misfire": "catch up"},
        {"name": "h", "job_type": "check", "cron": "0 7 * * *", "timezone": "Mars/Base"},
        {"name": "a", "job_type": "check", "every": "5m"},
        {"job_type": "check", "every": "5m", "colour": "red"},
    ) == [
        "namespace 'ops', schedule 'a': 'cron': cron '0 25 * * *' is not valid: Error "
        "validating expression '25': the last value (25) is higher than the maximum value (23)",
        "namespace 'ops', schedule 'b': 'job_type' 'nope' is not a job of namespace 'ops' "
        "(check, report)",
        "namespace 'ops', schedule 'c': 'args' ['city'] do not match the template fields "
        "['site'] of job 'report'",
        "namespace 'ops', schedule 'd': 'every': 'often' is not a duration; write it like 30s, "
        "15m, 1h30m or 1d",
        "namespace 'ops', schedule 'e': give either 'cron' (e.g. '0 7 * * 1-5', with "
        "'timezone') or 'every' (e.g. '15m'), not both or neither",
        "namespace 'ops', schedule 'f': 'report_to': 'irc:#ops' is not a channel; " + CHANNELS,
        "namespace 'ops', schedule 'g': 'misfire' is 'catch up'; use 'run once' (a fire missed "
        "while no dispatcher ran runs once, late) or 'skip'",
        "namespace 'ops', schedule 'h': 'timezone': unknown time zone 'Mars/Base' (use an IANA "
        "name like Europe/Oslo, or UTC)",
        "namespace 'ops', schedule 'a': two schedules have this name; a name is unique in its "
        "namespace",
        "namespace 'ops', schedule 10: 'name' is required: letters, digits, '_' and '-'",
        "namespace 'ops', schedule 10: unknown key 'colour' (allowed: args, cron, every, "
        "job_type, misfire, name, report_to, timezone)",
    ]


def test_a_schedules_args_obey_the_argument_limit() -> None:
    assert errors_of(
        {"name": "big", "job_type": "report", "args": {"site": "x" * 16385}, "every": "5m"},
        {"name": "nul", "job_type": "report", "args": {"site": "a\u0000b"}, "every": "5m"},
    ) == [
        "namespace 'ops', schedule 'big': 'args': the arguments are 16,385 bytes long; at most "
        "16,384 bytes (16 KiB) are accepted",
        "namespace 'ops', schedule 'nul': 'args': [site] has a NUL character, which no command "
        "line can hold",
    ]


def test_a_schedule_needs_somewhere_to_report() -> None:
    assert errors_of({"name": "a", "job_type": "check", "every": "5m"}, default_channel=None
                     ) == ["namespace 'ops', schedule 'a': 'report_to' is required: the "
                           "namespace has no default_channel (write 'platform:channel', e.g. "
                           "'slack:C0123ABCD')"]


CHECKED = '''
raw_config = {
    "ops": {
        "default_channel": "#ops",
        "jobs": {"report": {"run_args_template": "report {site}"}},
        "schedules": [%s],
    },
}
'''


def test_config_check_shows_each_schedules_next_three_runs(tmp_path, chatops) -> None:
    path = tmp_path / "job_configs.py"
    path.write_text(CHECKED % '{"name": "weekly", "job_type": "report", "args": {"site": "x"}, '
                    '"cron": "0 0 29 2 *", "timezone": "Europe/Oslo"}')
    result = chatops("config", "check", str(path), "--show-schedules")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(
        "schedules: 1\n"
        "  ops/weekly: ops_report site=x, cron 0 0 29 2 * (Europe/Oslo), reports to #ops, "
        "misfire: run once\n"
        "    next: 2028-02-29 00:00:00 CET, 2032-02-29 00:00:00 CET, 2036-02-29 00:00:00 CET\n")


def test_config_check_names_the_schedule_of_every_error(tmp_path, chatops) -> None:
    path = tmp_path / "job_configs.py"
    path.write_text(CHECKED % '{"name": "morning", "job_type": "report", "args": {"site": "x"}, '
                    '"cron": "0 7 * * 1-5", "report_to": "#ops"}')
    result = chatops("config", "check", str(path), "--show-schedules")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"{path}: 1 error(s):\n"
        "  namespace 'ops', schedule 'morning': 'report_to': '#ops' is not a channel; "
        + CHANNELS + "\n")
