"""Reaching a Kafka broker, shared by the telemetry daemon and the service: the connection
settings (TLS, SASL) and :func:`publish_control`, which the chat's ``telemetry`` commands use to
steer daemons. Only confluent-kafka: the daemon installs without the service's dependencies."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Producer

log = logging.getLogger(__name__)
_librdkafka = logging.getLogger("librdkafka")


@dataclass(frozen=True)
class BrokerSettings:
    """How to reach a broker; from a daemon's ``[kafka]`` section or the service's settings."""

    address: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    compression: str = "none"
    client_id: str = "chatops-telemetry"


def client_config(broker: BrokerSettings) -> dict[str, Any]:
    """librdkafka settings common to producers and consumers (never logged: a password)."""
    conf: dict[str, Any] = {"bootstrap.servers": broker.address, "client.id": broker.client_id,
                            "log.connection.close": False}
    if log.isEnabledFor(logging.DEBUG):  # [debug] verbose: all of librdkafka's own log
        conf["logger"] = _librdkafka
    else:  # its errors come through error_cb, said once a minute (_ErrorLog)
        conf["log_level"] = 0
    if broker.ca_file:
        conf["security.protocol"] = "sasl_ssl" if broker.sasl_password else "ssl"
        conf["ssl.ca.location"] = broker.ca_file
        if broker.cert_file:
            conf["ssl.certificate.location"] = broker.cert_file
            conf["ssl.key.location"] = broker.key_file
    elif broker.sasl_password:
        conf["security.protocol"] = "sasl_plaintext"  # the service's own choice to make
    if broker.sasl_password:
        conf.update({"sasl.mechanism": "PLAIN", "sasl.username": broker.sasl_username or "",
                     "sasl.password": broker.sasl_password})
    return conf


def publish_control(broker: BrokerSettings, topic: str, command: str,
                    value: Any = None, node: str = "", timeout: float = 10.0) -> None:
    """Send one control message (``exit``, ``dump``) to a node (key = its host name) or to
    every daemon of the topic (``node`` empty); raise RuntimeError if the broker refused it."""
    body: dict[str, Any] = {"command": command}
    if value is not None:
        body["value"] = value
    errors: list[KafkaError] = []
    producer = Producer({**client_config(broker), "message.timeout.ms": int(timeout * 1000)})
    producer.produce(topic, key=node.encode(), value=json.dumps(body).encode(),
                     on_delivery=lambda err, _m: errors.append(err) if err else None)
    if producer.flush(timeout) or errors:
        reason = errors[0].str() if errors else "no answer from the broker"
        raise RuntimeError(f"control message to {topic} not delivered: {reason}")
