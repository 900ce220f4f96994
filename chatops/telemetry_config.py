"""The ``telemetry`` section of job_configs.py: where the service finds the telemetry daemons'
Kafka broker and which clusters they publish, so admins can steer them from chat::

    telemetry = {
        "broker": "kafka.example.org:9093",
        "clusters": ["fox.educloud.no"],      # as the daemons' [global] cluster
        "topic_prefix": "",                    # as the daemons' [global] topic-prefix
        "ca_file": "/etc/chatops/kafka-ca.pem",    # TLS (with cert_file/key_file: mutual)
        "sasl_username": "chatops", "sasl_password_env": "CHATOPS_KAFKA_PASSWORD",
        "feeds": {"fox.educloud.no": "fox"},   # read back: daemons' cluster -> a cluster of
        "group": "hpc-chatops",                #  `clusters`; the consumer group
    }

With ``feeds``, the dispatcher reads each fed cluster's ``cluster`` and ``job`` topics: a
monitor with ``"source": "kafka"`` takes its cluster state from them instead of polling over
SSH, and a chat-submitted batch job is looked at as soon as a job record says it changed.

The password is named by an environment variable and read when a message is sent: it never sits
in the config, a report or a log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatops.cluster_config import unknown_cluster
from chatops.config_checks import Error
from chatops.kafka import BrokerSettings

TELEMETRY_KEYS = {"broker", "clusters", "topic_prefix", "ca_file", "cert_file", "key_file",
                  "sasl_username", "sasl_password_env", "feeds", "group"}
_BROKER = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}(,[A-Za-z0-9.\-\[\]:]+:\d{1,5})*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TelemetrySpec:
    broker: str
    clusters: tuple[str, ...]
    topic_prefix: str = ""
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_username: str | None = None
    sasl_password_env: str | None = None
    feeds: tuple[tuple[str, str], ...] = ()  # (the daemons' cluster, the service's cluster)
    group: str = "hpc-chatops"

    def topic(self, cluster: str, kind: str) -> str:
        """``[prefix.]<cluster>.<kind>``, as the daemons publish (``control.<role>``: listen)."""
        name = f"{cluster}.{kind}"
        return f"{self.topic_prefix}.{name}" if self.topic_prefix else name

    def control_topic(self, cluster: str, role: str) -> str:
        return self.topic(cluster, f"control.{role}")

    def fed(self, service_cluster: str) -> bool:
        return any(ours == service_cluster for _, ours in self.feeds)

    def broker_settings(self) -> BrokerSettings:
        password = os.environ.get(self.sasl_password_env) if self.sasl_password_env else None
        return BrokerSettings(self.broker, ca_file=self.ca_file, cert_file=self.cert_file,
                              key_file=self.key_file, sasl_username=self.sasl_username,
                              sasl_password=password, client_id="hpc-chatops")


def build_telemetry(error: Error, raw: Any, service_clusters: Any = ()) -> TelemetrySpec | None:
    """Validate the ``telemetry`` dict (None when there is none); every problem names the key."""
    if raw is None:
        return None
    where = "telemetry"
    if not isinstance(raw, Mapping):
        error(where, f"must be a dict, not {type(raw).__name__}")
        return None
    unknown = sorted(set(raw) - TELEMETRY_KEYS)
    if unknown:
        error(where, f"unknown key(s) {', '.join(map(repr, unknown))}; known: "
              f"{', '.join(sorted(TELEMETRY_KEYS))}")
    broker = raw.get("broker")
    if not isinstance(broker, str) or not _BROKER.match(broker):
        error(where, f"'broker' must be 'host:port' (several: comma-separated), not {broker!r}")
    clusters = raw.get("clusters")
    if (not isinstance(clusters, list | tuple) or not clusters
            or not all(isinstance(c, str) and _NAME.match(c) for c in clusters)):
        error(where, "'clusters' must be a list of the daemons' cluster names, e.g. "
              "['fox.educloud.no']")
        clusters = []
    prefix = raw.get("topic_prefix") or ""
    if not isinstance(prefix, str) or (prefix and not _NAME.match(prefix)):
        error(where, f"'topic_prefix' must be letters, digits, '.', '_' and '-', not {prefix!r}")
    files = {key: raw.get(key) for key in ("ca_file", "cert_file", "key_file")}
    for key, value in files.items():
        if value is not None and not (isinstance(value, str) and os.path.isabs(value)):
            error(where, f"{key!r} must be an absolute path, not {value!r}")
    if bool(files["cert_file"]) != bool(files["key_file"]):
        error(where, "'cert_file' and 'key_file' go together")
    if files["cert_file"] and not files["ca_file"]:
        error(where, "a client certificate needs 'ca_file' (TLS)")
    password_env = raw.get("sasl_password_env")
    if password_env is not None and not (isinstance(password_env, str)
                                         and _ENV_NAME.match(password_env)):
        error(where, "'sasl_password_env' names an environment variable, e.g. "
              "'CHATOPS_KAFKA_PASSWORD' (the password itself never goes in this file)")
    feeds = raw.get("feeds") or {}
    if not isinstance(feeds, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in feeds.items()):
        error(where, "'feeds' maps the daemons' cluster names to clusters of `clusters`, e.g. "
              "{'fox.educloud.no': 'fox'}")
        feeds = {}
    for theirs, ours in feeds.items():
        if theirs not in clusters:
            error(where, f"'feeds': {theirs!r} is not one of 'clusters'")
        if ours not in service_clusters:
            error(where, f"'feeds': {unknown_cluster(ours, service_clusters)}")
    group = raw.get("group", "hpc-chatops")
    if not isinstance(group, str) or not _NAME.match(group):
        error(where, f"'group' must be letters, digits, '.', '_' and '-', not {group!r}")
    return TelemetrySpec(str(broker), tuple(clusters), prefix if isinstance(prefix, str) else "",
                         files["ca_file"], files["cert_file"], files["key_file"],
                         raw.get("sasl_username"), password_env, tuple(feeds.items()),
                         str(group))
