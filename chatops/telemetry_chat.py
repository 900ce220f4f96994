"""``telemetry dump on|off <cluster> [node]`` and ``telemetry exit <cluster> <node>``: admins
steer the telemetry daemons from chat, through their Kafka control topics.

Both roles' topics get the message (a head node runs a ``master`` daemon beside its ``node``
one); a node is named by its host name (the message's key), every daemon of the cluster by none.
Each use is audited: logged and told to the admin channel, whoever sent it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chatops.events import Requester
from chatops.grammar import TelemetryControl
from chatops.job_config import Config
from chatops.kafka import BrokerSettings, publish_control
from chatops.schedule_chat import Answer

log = logging.getLogger("chatops.audit")

ROLES = ("node", "master")


def control(config: Config, asked: TelemetryControl, who: Requester,
            tell_admins: Callable[[str], Any]) -> Answer:
    """Send the control message ``asked`` for, if ``who`` may; say what happened."""
    spec = config.telemetry
    if spec is None:
        return Answer("Telemetry is not set up here: add a `telemetry` section (the daemons' "
                      "broker and clusters) to job_configs.py.", refused=True)
    if not config.is_admin(who.qualified_user):
        return Answer("Only admins may steer the telemetry daemons.", refused=True)
    if asked.cluster not in spec.clusters:
        return Answer(f"No telemetry cluster `{asked.cluster}`: this service knows "
                      f"{', '.join(f'`{c}`' for c in spec.clusters)}.", refused=True)
    what = (f"turn the debug dump {'on' if asked.value else 'off'}" if asked.command == "dump"
            else "exit")
    whom = (f"the telemetry daemons on `{asked.node}`" if asked.node
            else "every telemetry daemon") + f" of cluster `{asked.cluster}`"
    broker = spec.broker_settings()
    failures = _send(broker, [spec.control_topic(asked.cluster, role) for role in ROLES], asked)
    if len(failures) == len(ROLES):
        return Answer(f"Could not tell {whom} to {what}: {failures[0]}. Nothing was sent; try "
                      "again when the broker answers.")
    line = f"{who.qualified_user} told {whom} to {what}"
    log.info("audit: %s", line)
    tell_admins(f"Telemetry: {line}.")
    return Answer(f"Told {whom} to {what}.")


def _send(broker: BrokerSettings, topics: list[str], asked: TelemetryControl) -> list[str]:
    """Publish to each topic; the reasons of those that failed (a cluster may have no master
    daemon, so one missing topic is not an error)."""
    failures = []
    for topic in topics:
        try:
            publish_control(broker, topic, asked.command, asked.value, node=asked.node)
        except Exception as exc:  # the broker's answer, for the admin
            failures.append(str(exc))
    return failures
