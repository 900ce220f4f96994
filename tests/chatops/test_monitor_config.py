"""`monitors` in job_configs.py: what is accepted, and every error naming the monitor."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from chatops.config_loader import ConfigError, build_config

CHATOPS = str(Path(sys.executable).parent / "chatops")
CLUSTERS = {"saga": {"host": "saga.example", "user": "ops", "key_file": "/k",
                     "known_hosts": "/kh", "command_timeout": 20}}


def config_with(**monitors: Any):
    return build_config({}, CLUSTERS, monitors=monitors)


def errors_of(**monitors: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_with(**monitors)
    return caught.value.errors


def test_a_monitor_gets_defaults_and_its_settings() -> None:
    spec = config_with(saga={"targets": ["slack:C0123ABCD"]}).monitors["saga"]
    assert (spec.cadence, spec.cadence_text, spec.timezone, spec.partitions, spec.post,
            spec.offline_after, spec.timeout) == (60.0, "1m", "UTC", True, "on change", 2, 20.0)
    spec = config_with(saga={
        "cadence": "10s", "targets": ["telegram:-100123", "discord_webhook:DISCORD_WEBHOOK"],
        "timezone": "Europe/Oslo", "partitions": False, "post": "every poll",
        "offline_after": 3}).monitors["saga"]
    assert (spec.cadence, spec.timeout, spec.post, spec.offline_after) == (
        10.0, 10.0, "every poll", 3)
    assert spec.webhook_variables == {"DISCORD_WEBHOOK"}


@pytest.mark.parametrize(("cadence", "message"), [
    ("7m", "'7m': a cadence must divide the hour (1m, 2m, 3m, 4m, 5m, 6m, 10m, 12m, 15m, 20m, "
           "30m)"),
    ("45s", "'45s': a cadence must divide the minute"),
    ("5h", "'5h': a cadence in hours must divide the day"),
    ("often", "'often' is not a duration (write a whole number with one unit: 30s, 5m, 1h)"),
    ("0s", "'0s': a duration must not be zero"),
])
def test_a_cadence_must_divide_the_minute_hour_or_day(cadence: str, message: str) -> None:
    [error] = errors_of(saga={"cadence": cadence, "targets": ["slack:C0123ABCD"]})
    assert error.startswith("monitor 'saga': 'cadence': " + message)


def test_every_error_names_the_monitor_and_the_key() -> None:
    errors = errors_of(
        nowhere={"targets": ["slack:C0123ABCD"]},
        saga={"targets": ["irc:#ops", "discord_webhook:https://discord.com/api/webhooks/1/x"],
              "timezone": "Mars/Base", "partitions": "yes", "post": "sometimes",
              "offline_after": 0, "timeout": 90, "colour": "red"})
    assert errors[0] == ("monitor 'nowhere': 'nowhere' is not defined in clusters "
                         "(saga); a monitor is named after the cluster it watches")
    rest = "\n".join(errors[1:])
    assert all(e.startswith("monitor 'saga': ") for e in errors[1:])
    assert "unknown key 'colour' (allowed: cadence, offline_after, partitions, post, source, " \
           "targets, timeout, timezone)" in rest
    assert "'targets': 'irc:#ops' is not a channel" in rest
    assert ("'targets': 'discord_webhook:https://discord.com/api/webhooks/1/x': after "
            "'discord_webhook:' comes the name of the environment variable holding the "
            "webhook's URL") in rest
    assert "'timezone': unknown time zone 'Mars/Base'" in rest
    assert "'partitions' must be True or False, not 'yes'" in rest
    assert "'post' is 'sometimes'; use 'on change'" in rest
    assert "'offline_after' must be a whole number of failed polls, at least 1, not 0" in rest


def test_targets_are_required_and_a_poll_ends_before_the_next() -> None:
    assert errors_of(saga={}) == [
        "monitor 'saga': 'targets' is required: a list of channels ('slack:C0123ABCD', ...) "
        "or 'discord_webhook:<variable holding the webhook URL>'"]
    assert errors_of(saga={"cadence": "30s", "timeout": 45, "targets": ["slack:C1"]}) == [
        "monitor 'saga': 'timeout' (45 s) is longer than the cadence (30s): a poll must end "
        "before the next one is due"]


@pytest.mark.slow
def test_config_check_lists_monitors_and_names_the_broken_one(tmp_path: Path) -> None:
    path = tmp_path / "job_configs.py"
    for name in ("k", "f"):  # config check looks for the cluster's files
        (tmp_path / name).write_text("")
    head = textwrap.dedent(f"""
        clusters = {{"saga": {{"host": "h", "user": "u", "known_hosts": "{tmp_path}/k",
                              "key_file": "{tmp_path}/f"}}}}
        raw_config = {{}}
    """)
    path.write_text(head + 'monitors = {"saga": {"cadence": "30s", "targets": ["slack:C1"]}}\n')
    result = subprocess.run([CHATOPS, "config", "check", str(path)], capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert ("monitors: 1\n  saga: every 30s (timeout 30 s), on change, offline after 2 failed "
            "polls, times in UTC; to slack:C1\n") in result.stdout
    path.write_text(head + 'monitors = {"saga": {"cadence": "7m", "targets": ["slack:C1"]}}\n')
    result = subprocess.run([CHATOPS, "config", "check", str(path)], capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"{path}: 1 error(s):\n  monitor 'saga': 'cadence': '7m': a cadence must divide the "
        "hour")


def test_the_deploy_guides_poller_mapping_is_a_valid_config() -> None:
    """DEPLOY.md's example for sites moving from the status poller passes config check."""
    text = (Path(__file__).resolve().parents[2] / "DEPLOY.md").read_text()
    section = text[text.index("### Moving from the cluster status poller"):]
    start = section.index("```python\n") + len("```python\n")
    example = section[start:section.index("\n```\n", start)]
    names: dict[str, Any] = {}
    exec(example, names)  # the admin's Python, as load_config runs it
    config = build_config({}, names["clusters"], monitors=names["monitors"])
    cluster, monitor = config.clusters["mscluster"], config.monitors["mscluster"]
    assert (cluster.password_env, cluster.key_file, cluster.port, cluster.connect_timeout) == (
        "CLUSTER_PASSWORD", None, 22, 10.0)
    assert monitor.targets == ("discord_webhook:DISCORD_WEBHOOK",)
    assert (monitor.partitions, monitor.post, monitor.cadence) == (True, "on change", 300.0)


def test_a_password_and_a_webhook_named_by_variable_are_secrets() -> None:
    from chatops import live_config, redact
    from chatops.settings import load_settings

    clusters = {"saga": {"host": "h", "user": "u", "known_hosts": "kh",
                         "password_env": "CLUSTER_PASSWORD"}}
    config = build_config({}, clusters, monitors={"saga": {
        "targets": ["discord_webhook:DISCORD_WEBHOOK"]}})
    settings = load_settings({"CHATOPS_HOME": "/tmp/x", "CLUSTER_PASSWORD": "hunter2-hunter2",
                              "DISCORD_WEBHOOK": "https://discord.com/api/webhooks/1234/"
                                                 "abcdefghijklmnopqrstuvwxyz"})
    assert {"hunter2-hunter2", "https://discord.com/api/webhooks/1234/abcdefghijklmnopqrstuvwxyz",
            "abcdefghijklmnopqrstuvwxyz"} <= redact.secret_values(settings, config)
    assert live_config.named_variables(config) >= {"CLUSTER_PASSWORD", "DISCORD_WEBHOOK"}
    assert errors_of_clusters({"saga": {"host": "h", "user": "u", "known_hosts": "kh"}}) == [
        "cluster 'saga': give 'key_file' (a private key's path) or 'agent': True"]


def errors_of_clusters(clusters: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        build_config({}, clusters)
    return caught.value.errors
