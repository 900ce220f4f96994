"""Sonar's "new format" envelopes: ``{meta, data: {type, attributes}}`` or ``{meta, errors}``.

Topics are ``[prefix.]<cluster>.<type>`` with the host name as key, as Sonar sends them. Times
are RFC 3339 in local time with its offset and no fraction (``2026-12-02T03:10:00+01:00``, ``Z``
for UTC), as the specification's ``Timestamp`` type says.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from datetime import datetime
from typing import Any

PRODUCER = "hpc-chatops"
DATA_TYPES = ("sample", "sysinfo", "job", "cluster")
# Sonar's "epoch" for jobs that are not Slurm jobs counts seconds from here (2020-01-01 UTC).
EPOCH_TIME_BASE = 1577836800


def producer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hpc-chatops")
    except PackageNotFoundError:
        return "0.0.0"


def timestamp(t: float) -> str:
    text = datetime.fromtimestamp(int(t)).astimezone().isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def local_timestamp(naive: datetime) -> str:
    """A naive local time (as Slurm prints it) with this host's offset."""
    return naive.astimezone().isoformat(timespec="seconds").replace("+00:00", "Z")


def host_name(hostname_only: bool = True) -> str:
    """This host as it is known to itself; its leaf name (``c1-10``) when ``hostname_only``."""
    name = socket.gethostname()
    return name.split(".", 1)[0] if hostname_only else name


def topic(prefix: str | None, cluster: str, kind: str) -> str:
    """``[prefix.]<cluster>.<kind>``: a data type, or ``control.<role>``."""
    return f"{prefix}.{cluster}.{kind}" if prefix else f"{cluster}.{kind}"


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


class Envelopes:
    """Builds the envelopes of one daemon: its producer, version, cluster, node and token."""

    def __init__(self, cluster: str, node: str, token: str | None = None,
                 version: str | None = None):
        self.cluster = cluster
        self.node = node
        self.token = token
        self.version = version or producer_version()

    def meta(self, attrs: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
        meta: dict[str, Any] = {"producer": PRODUCER, "version": self.version}
        pairs = [{"key": k, "value": v} for k, v in attrs]
        if pairs:
            meta["attrs"] = pairs
        if self.token:
            meta["token"] = self.token
        return meta

    def data(self, kind: str, now: float, attributes: dict[str, Any],
             attrs: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
        """A data envelope; ``attributes`` follow ``time`` and ``cluster``."""
        return {"meta": self.meta(attrs), "data": {"type": kind, "attributes": {
            "time": timestamp(now), "cluster": self.cluster, **attributes}}}

    def error(self, detail: str, now: float,
              attrs: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
        """A hard error: the operation produced nothing this time."""
        return {"meta": self.meta(attrs), "errors": [{
            "time": timestamp(now), "detail": detail or "unknown error",
            "cluster": self.cluster, "node": self.node}]}
