"""The ``monitors`` of job_configs.py, validated: which clusters the monitor watches, how often,
and where it says what changed.

::

    monitors = {
        "saga": {                          # a cluster of `clusters`
            "cadence": "1m",               # Sonar's syntax; divides the minute, hour or day
            "targets": ["slack:C0123ABCD", "discord_webhook:DISCORD_WEBHOOK"],
            "timezone": "Europe/Oslo",     # for the times in messages (default UTC)
            "partitions": True,            # the per-partition table on the board
            "post": "on change",           # or "every poll"
            "offline_after": 2,            # failed polls in a row before "offline"
            "timeout": 20,                 # seconds one poll may take (default: the cadence,
                                           #  at most the cluster's command_timeout)
            "source": "ssh",               # or "kafka": the telemetry daemons' cluster data
        },
    }

A target is a channel on any platform (``platform:channel``), or ``discord_webhook:NAME``: a
Discord webhook whose URL is in the environment variable NAME (a URL holds its secret token, so
it never lives in this file). Every error names the monitor and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatops.cadence import cadence as parse_cadence
from chatops.cluster_config import ClusterSpec, unknown_cluster
from chatops.config_checks import Error, one_of, unknown_keys
from chatops.triggers import TriggerError, time_zone
from chatops.user_ids import channel_problem

MONITOR_KEYS = {"cadence", "targets", "timezone", "partitions", "post", "offline_after",
                "timeout", "source"}
POST = ("on change", "every poll")
SOURCES = ("ssh", "kafka")  # sinfo over the pooled connection, or the telemetry feed
WEBHOOK = "discord_webhook"  # the target kind (and outbound platform) of a Discord webhook
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class MonitorSpec:
    cluster: str
    cadence: float  # seconds; polls fall on the instants that are zero modulo it
    cadence_text: str  # as written: "1m"
    targets: tuple[str, ...]  # 'platform:channel' or 'discord_webhook:ENV_NAME'
    timezone: str = "UTC"
    partitions: bool = True
    post: str = "on change"
    offline_after: int = 2
    timeout: float = 30.0
    source: str = "ssh"

    @property
    def webhook_variables(self) -> set[str]:
        return {t.partition(":")[2] for t in self.targets if t.startswith(WEBHOOK + ":")}


def target_problem(value: object) -> str | None:
    """Why ``value`` is not a monitor target (None: it is one)."""
    if isinstance(value, str) and value.startswith(WEBHOOK + ":"):
        name = value.partition(":")[2]
        if _ENV_NAME.match(name):
            return None
        return (f"{value!r}: after 'discord_webhook:' comes the name of the environment "
                f"variable holding the webhook's URL (e.g. discord_webhook:DISCORD_WEBHOOK)")
    problem = channel_problem(value)
    if problem:
        return problem + ", or discord_webhook:<variable holding the webhook URL>"
    return None


def build_monitors(error: Error, raw: Any, clusters: Mapping[str, ClusterSpec]
                   ) -> dict[str, MonitorSpec]:
    """Validate ``monitors``: {cluster name: settings}."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        error("monitors", f"must be a dict of cluster names, not {type(raw).__name__}")
        return {}
    monitors = {}
    for name, item in raw.items():
        where = f"monitor {name!r}"
        if not isinstance(name, str) or name not in clusters:
            error(where, f"{unknown_cluster(name, clusters)}; a monitor is named after the "
                  "cluster it watches")
            continue
        if not isinstance(item, Mapping):
            error(where, f"must be a dict, not {type(item).__name__}")
            continue
        spec = _build_one(error, where, clusters[name], item)
        if spec is not None:
            monitors[name] = spec
    return monitors


def _build_one(error: Error, where: str, cluster: ClusterSpec, raw: Mapping[str, Any]
               ) -> MonitorSpec | None:
    unknown_keys(error, where, raw, MONITOR_KEYS)
    ok = True
    try:
        every = parse_cadence(raw.get("cadence", "1m"))
    except ValueError as exc:
        error(where, f"'cadence': {exc}")
        ok, every = False, None
    targets = raw.get("targets")
    if not isinstance(targets, (list, tuple)) or not targets:
        error(where, "'targets' is required: a list of channels ('slack:C0123ABCD', ...) or "
              "'discord_webhook:<variable holding the webhook URL>'")
        ok, targets = False, ()
    for target in targets:
        problem = target_problem(target)
        if problem:
            error(where, f"'targets': {problem}")
            ok = False
    if len(set(map(str, targets))) != len(targets):
        error(where, "'targets' lists a target twice")
        ok = False
    zone = raw.get("timezone", "UTC")
    try:
        time_zone(zone)
    except TriggerError as exc:
        error(where, f"'timezone': {exc}")
        ok = False
    partitions = raw.get("partitions", True)
    if not isinstance(partitions, bool):
        error(where, f"'partitions' must be True or False, not {partitions!r}")
        ok = False
    post = raw.get("post", "on change")
    if not one_of(error, where, "post", post, POST,
                  "'on change' (a message when something changes) or 'every poll'"):
        ok = False
    offline_after = raw.get("offline_after", 2)
    if isinstance(offline_after, bool) or not isinstance(offline_after, int) \
            or offline_after < 1:
        error(where, f"'offline_after' must be a whole number of failed polls, at least 1, not "
              f"{offline_after!r}")
        ok = False
    timeout = raw.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout <= 0):
        error(where, f"'timeout' must be a positive number of seconds, not {timeout!r}")
        ok = False
    source = raw.get("source", "ssh")
    if not one_of(error, where, "source", source, SOURCES,
                  "'ssh' (sinfo over the cluster's connection) or 'kafka' (the telemetry "
                  "daemons' cluster data, see `telemetry` 'feeds')"):
        ok = False
    if not ok or every is None:
        return None
    if timeout is not None and timeout > every.seconds:
        error(where, f"'timeout' ({timeout:g} s) is longer than the cadence ({every.text}): a "
              "poll must end before the next one is due")
        return None
    return MonitorSpec(
        cluster=cluster.name, cadence=float(every.seconds), cadence_text=every.text,
        targets=tuple(targets), timezone=zone, partitions=partitions, post=post,
        offline_after=offline_after, source=source,
        timeout=float(timeout if timeout is not None
                      else min(cluster.command_timeout, every.seconds)))
