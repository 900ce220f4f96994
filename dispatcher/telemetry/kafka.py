"""Kafka with confluent-kafka (librdkafka): the data sink, the control consumer, and
the service's chat commands steer daemons with :func:`chatops.kafka.publish_control`.

The producer is idempotent (no duplicates from its own retries, order kept per partition),
compresses as configured, and speaks TLS when a CA file is given (with a client certificate
when one is given, with SASL PLAIN — user name = cluster, as Sonar does — when a password is).
librdkafka retries on its own until ``[kafka] timeout``; the daemon's buffer keeps every
message until a delivery report says the broker has it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_STORED,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from chatops.kafka import BrokerSettings, client_config
from dispatcher.telemetry.buffer import Message
from dispatcher.telemetry.sender import Refused

log = logging.getLogger(__name__)
_librdkafka = logging.getLogger("librdkafka")


class _ErrorLog:
    """librdkafka reports the same connection error over and over: say each once a minute."""

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self._said: dict[str, float] = {}

    def say(self, text: str) -> None:
        key = re.sub(r" \(after \d+ms in state \w+[^)]*\)", "", text)
        now = time.monotonic()
        if now - self._said.get(key, -60.0) >= 60.0:
            self._said[key] = now
            log.warning("%s%s", key, self.suffix)

    def __call__(self, error: KafkaError) -> None:
        self.say(f"Kafka: {error.str()}")


class KafkaSink:
    name = "kafka"

    def __init__(self, broker: BrokerSettings, timeout_seconds: int):
        conf = client_config(broker)
        conf.update({
            "enable.idempotence": True,
            "compression.codec": broker.compression,
            "message.timeout.ms": timeout_seconds * 1000,
            "linger.ms": 20,
            "error_cb": _ErrorLog(" (data is kept on disk and retried)"),
        })
        self.producer = Producer(conf)

    def send(self, batch: list[Message], abort: threading.Event) -> tuple[int, str | None]:
        """Produce ``batch`` in order and wait for every delivery report (or ``abort``)."""
        results: dict[int, KafkaError | None] = {}

        def report(seq: int) -> Callable[[KafkaError | None, object], None]:
            return lambda err, _msg: results.__setitem__(seq, err)

        refused: str | None = None
        for index, m in enumerate(batch):
            while True:
                try:
                    self.producer.produce(m.topic, value=m.value, key=m.key.encode(),
                                          on_delivery=report(m.seq))
                    break
                except BufferError:  # librdkafka's queue is full: let it drain
                    self.producer.poll(0.1)
                except KafkaException as exc:  # larger than the broker takes: never will
                    if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                        raise
                    refused = exc.args[0].str()
                    break
            if refused is not None:
                batch = batch[:index]  # send what came before it, then say so
                break
        while len(results) < len(batch) and not abort.is_set():
            self.producer.poll(0.2)
        stopped = len(results) < len(batch)
        if stopped:  # stopping: give up on what the broker has not taken
            self.producer.purge()
            self.producer.poll(0)
        delivered = 0
        for m in batch:
            if results.get(m.seq, "pending") is not None:
                break
            delivered += 1
        if delivered == len(batch):
            if refused is not None:
                raise Refused(delivered, refused)
            return delivered, None
        error = results.get(batch[delivered].seq)
        if stopped or not isinstance(error, KafkaError):
            return delivered, "the broker had not taken them when the daemon stopped"
        return delivered, error.str()

    def close(self) -> None:
        self.producer.flush(5)


@dataclass(frozen=True)
class ControlRecord:
    key: str
    value: bytes
    timestamp: float | None  # seconds, from the message's Kafka timestamp


class ControlConsumer:
    """Reads ``<cluster>.control.<role>``: assigned (no group rebalancing), offsets committed
    per host, so a restarted daemon resumes after what it already obeyed."""

    def __init__(self, broker: BrokerSettings, topic: str, group: str):
        conf = client_config(broker)
        self.errors = _ErrorLog(" (control messages are read when it answers)")
        conf.update({"group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "error_cb": self.errors})
        self.topic = topic
        self.consumer = Consumer(conf)
        self.assigned = False

    def _assign(self) -> bool:
        try:
            meta = self.consumer.list_topics(self.topic, timeout=5)
        except KafkaException as exc:
            self.errors.say(f"control topic {self.topic}: {exc.args[0].str()}")
            return False
        topic = meta.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            self.errors.say(f"control topic {self.topic} does not exist yet")
            return False
        self.consumer.assign([TopicPartition(self.topic, p, OFFSET_STORED)
                              for p in topic.partitions])
        self.assigned = True
        return True

    def poll(self, wait: float = 1.0) -> list[ControlRecord]:
        """What arrived since the last poll."""
        if not self.assigned and not self._assign():
            return []
        records = []
        deadline = time.monotonic() + wait
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            messages = self.consumer.consume(num_messages=100, timeout=timeout)
            for m in messages:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("control topic %s: %s", self.topic, m.error().str())
                    continue
                kind, ms = m.timestamp()
                records.append(ControlRecord((m.key() or b"").decode(errors="replace"),
                                             m.value() or b"", ms / 1000 if kind else None))
            if not messages or timeout == 0:
                return records

    def commit(self) -> None:
        """Record that everything polled so far has been handled."""
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("control topic %s: could not record progress: %s", self.topic, exc)

    def close(self) -> None:
        self.consumer.close()
