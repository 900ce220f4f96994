"""The sinks other than Kafka: a directory tree, an HTTP endpoint, and standard output.

Every sink has ``send(batch, abort) -> (delivered, reason)``: it delivers a prefix of the batch
in order and says why it stopped short; the daemon keeps the rest in its buffer and retries.

* ``[directory]``: Jobanalyzer's tree, ``<data-directory>/YYYY/MM/DD/0+<type>-<node>.json``
  (UTC date), ``0+job-slurm.json`` and ``0+cluzter-slurm.json`` for the master's data (Sonar's
  spelling), one JSON document per line.
* ``[http]``: Sonar's ``doc/HOWTO-HTTP.md``: a POST of each envelope to ``<api-root>/<topic>``,
  the topic being the data type or ``<prefix>.<type>``, with the cluster name and upload
  password as HTTP Basic credentials; any 2xx answer is success.
* No sink section: Sonar's stdio sink, one JSON object per line with ``topic``, ``key``,
  ``client`` and ``value``.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request

from dispatcher.telemetry.buffer import Message


class DirectorySink:
    name = "directory"

    def __init__(self, root: str):
        self.root = root

    def send(self, batch: list[Message], abort: threading.Event) -> tuple[int, str | None]:
        for i, m in enumerate(batch):
            kind = "cluzter" if m.kind == "cluster" else m.kind
            owner = m.key if kind in ("sample", "sysinfo") else "slurm"
            day = time.strftime("%Y/%m/%d", time.gmtime())
            directory = os.path.join(self.root, day)
            try:
                os.makedirs(directory, exist_ok=True)
                with open(os.path.join(directory, f"0+{kind}-{owner}.json"), "ab") as f:
                    f.write(m.value + b"\n")
            except OSError as exc:
                return i, f"cannot write under {directory}: {exc.strerror}"
        return len(batch), None

    def close(self) -> None:
        pass


class HttpSink:
    name = "http"

    def __init__(self, api_root: str, cluster: str, password: str | None, ca_file: str | None,
                 proxy: str, prefix: str | None, timeout: float):
        self.api_root = api_root.rstrip("/")
        self.prefix = prefix
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        if password:
            token = base64.b64encode(f"{cluster}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(
            context=ssl.create_default_context(cafile=ca_file or None))]
        if proxy:
            handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
        self.opener = urllib.request.build_opener(*handlers)

    def send(self, batch: list[Message], abort: threading.Event) -> tuple[int, str | None]:
        for i, m in enumerate(batch):
            if abort.is_set():
                return i, "not delivered before stop"
            topic = f"{self.prefix}.{m.kind}" if self.prefix else m.kind
            request = urllib.request.Request(f"{self.api_root}/{topic}", data=m.value,
                                             headers=self.headers, method="POST")
            try:
                with self.opener.open(request, timeout=self.timeout) as answer:
                    answer.read()
            except urllib.error.HTTPError as exc:
                return i, f"{request.full_url} answered {exc.code} {exc.reason}"
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                return i, f"{request.full_url}: {reason}"
        return len(batch), None

    def close(self) -> None:
        pass


class StdioSink:
    name = "stdout"

    def __init__(self, client: str):
        self.client = client

    def send(self, batch: list[Message], abort: threading.Event) -> tuple[int, str | None]:
        for m in batch:
            line = {"topic": m.topic, "key": m.key, "client": self.client,
                    "value": json.loads(m.value)}
            sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        return len(batch), None

    def close(self) -> None:
        pass
