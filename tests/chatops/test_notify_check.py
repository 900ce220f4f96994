"""`chatops config check` and every service check the notification settings and templates: all
errors at once, and a dispatcher with a broken one refuses to start (issue 12, item 5)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chatops.config_loader import ConfigError, load_config
from chatops.notify.check import check_notifications, check_setup, check_templates
from chatops.settings import SetupError, load_settings
from dispatcher.loop import Dispatcher
from tests.support.notify import make_service

BROKEN = textwrap.dedent("""
    raw_config = {"ns": {"jobs": {"j": {"run_args_template": "true", "report_format": "html"}}}}
    clusters = {"hpc": {"host": ""}}
    notifications = {
        "default_connector": "pigeon",
        "mailto": {"allowed_patterns": ["(unclosed"], "allowed_domain": ["uni.example"]},
        "rate_limits": {"slack": {"per_target": -1}, "fax": {}},
        "attempts": 0,
        "user_cap": {"count": 3, "window": "1h"},
        "hints": {"cpu_low": 5},
    }
""")


def test_every_notification_error_is_listed_with_the_job_and_cluster_errors(tmp_path: Path):
    path = tmp_path / "job_configs.py"
    path.write_text(BROKEN)
    with pytest.raises(ConfigError) as failed:
        load_config(path)
    errors = failed.value.errors
    assert any("'report_format' is 'html'" in e for e in errors)  # the jobs' ...
    assert any(e.startswith("cluster 'hpc'") for e in errors)  # ... the clusters' ...
    assert [e for e in errors if e.startswith("notifications")] == [  # ... and these, at once
        "notifications.default_connector: 'pigeon' is not a connector (one of slack, "
        "telegram, discord, msteams, mailto, matrix)",
        "notifications.mailto.allowed_domain: unknown key (known: allowed_domains, "
        "allowed_patterns)",
        "notifications.mailto.allowed_patterns: '(unclosed' is not a regular expression: "
        "missing ), unterminated subpattern at position 0",
        "notifications.attempts: must be a whole number ≥ 1, not 0",
        "notifications.hints.cpu_low: must be a share between 0 and 1, not 5",
        "notifications.user_cap.window: must be a number of seconds > 0, not '1h'",
        "notifications.rate_limits.slack.per_target: must be a number ≥ 0, not -1",
        "notifications.rate_limits.fax: not a connector (one of slack, telegram, discord, "
        "msteams, mailto, matrix)",
    ]
    assert check_notifications({"attempts": 3, "max_wait": 60}) == []
    assert check_notifications(["mailto"]) == ["notifications must be a dict, not list"]


def test_connectors_the_settings_rely_on_and_templates_are_checked(tmp_path: Path):
    site = tmp_path / "templates"
    (site / "telegram").mkdir(parents=True)
    (site / "telegram" / "fail.j2").write_text("<b>{{ title }</b>\n")
    (site / "pager").mkdir()
    (site / "pager" / "default.j2").write_text("{{ title }}")
    errors, warnings = check_setup(
        {"default_connector": "mailto", "msteams": {"allowed_domains": ["uni.example"]},
         "slack": {"allowed_channels": ["C1"]}},
        {"CHATOPS_TEMPLATES_DIR": str(site)})
    assert errors == [
        "notifications.default_connector: 'mailto' is not configured: set CHATOPS_SMTP_HOST "
        "(or name a configured connector)",
        "notifications.msteams: the Teams webhook URL is not set: put it in "
        "CHATOPS_TEAMS_WEBHOOK_URL",
        f"{site / 'pager' / 'default.j2'}: 'pager' is not a connector (one of slack, telegram, "
        "discord, msteams, mailto, matrix); the template is never used",
        f"{site / 'telegram' / 'fail.j2'}:1: unexpected '}}'",
    ]
    assert warnings == ["notifications.slack is set, but slack is not configured (set "
                        "SLACK_BOT_TOKEN): its receivers are refused"]
    assert check_setup({"default_connector": "mailto"}, {"CHATOPS_SMTP_HOST": "mx"}) == ([], [])
    assert check_templates(str(tmp_path / "none")) == [
        f"CHATOPS_TEMPLATES_DIR ({tmp_path / 'none'}) is not a folder: create it, with one "
        "folder per connector (e.g. telegram/fail.j2), or unset it"]
    assert check_templates(None) == []  # the package's own compile


def test_a_dispatcher_with_a_broken_notification_setting_refuses_to_start(tmp_path: Path):
    service = make_service(tmp_path)
    config = service.config.__class__(**{**service.config.__dict__,
                                         "notifications": {"default_connector": "mailto"}})
    with pytest.raises(SetupError) as refused:
        Dispatcher(service.settings, config, service.queue)
    assert str(refused.value) == (
        "the Slurm notification settings have errors:\n"
        "notifications.default_connector: 'mailto' is not configured: set CHATOPS_SMTP_HOST "
        "(or name a configured connector)\n"
        "Check them with: chatops config check")
    settings = load_settings({**service.settings.environ, "CHATOPS_SMTP_HOST": "127.0.0.1"})
    assert Dispatcher(settings, config, service.queue).news.ingest is not None


@pytest.mark.slow
def test_config_check_names_every_notification_problem(chatops, tmp_path: Path) -> None:
    path = tmp_path / "job_configs.py"
    path.write_text(BROKEN)
    result = chatops("config", "check", str(path))
    assert result.returncode == 1
    assert "notifications.default_connector: 'pigeon' is not a connector" in result.stderr
    assert "notifications.attempts: must be a whole number ≥ 1, not 0" in result.stderr
    assert "'report_format' is 'html'" in result.stderr
    path.write_text('raw_config = {"ns": {"jobs": {"j": {"run_args_template": "true"}}}}\n'
                    'notifications = {"default_connector": "mailto"}\n')
    result = chatops("config", "check", str(path))
    assert result.returncode == 1
    assert (f"{path}: notifications.default_connector: 'mailto' is not configured: set "
            "CHATOPS_SMTP_HOST (or name a configured connector)\n") in result.stderr
    assert f"{path}: not OK: 1 notification setting cannot be used" in result.stderr
