"""The four operations, each a list of envelopes to send: ``sample``, ``sysinfo``, ``job``,
``cluster``.

An operation that fails (``sacct`` or ``sinfo`` failing, an unexpected error collecting) gives
an ``{meta, errors}`` envelope: never silence; the next cadence tries again. ``job`` always
sends at least one envelope, empty when there is nothing (the heartbeat). ``extra_attrs`` are
added to every envelope's ``meta.attrs`` (the daemon's count of buffered messages dropped).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from chatops.slurm.client import SlurmError
from dispatcher.telemetry import cluster, jobs, sysinfo
from dispatcher.telemetry.config import Config
from dispatcher.telemetry.delta import RECORDS_ATTR, DeltaCoder
from dispatcher.telemetry.envelope import Envelopes
from dispatcher.telemetry.gpu import probe
from dispatcher.telemetry.sample import Sampler

log = logging.getLogger(__name__)

Attrs = list[tuple[str, str]]


class Operations:
    def __init__(self, config: Config, envelopes: Envelopes,
                 extra_attrs: Callable[[], Attrs] = list):
        self.config = config
        self.envelopes = envelopes
        self.extra_attrs = extra_attrs
        ops = {"sample": config.sample.cadence, "sysinfo": config.sysinfo.cadence,
               "job": config.jobs.cadence, "cluster": config.cluster_state.cadence}
        self.cadences = {op: c.seconds for op, c in ops.items() if c}
        self.at_start = [op for op, settings in (("sysinfo", config.sysinfo),
                                                 ("cluster", config.cluster_state))
                         if settings.cadence and settings.on_startup]
        gpus = probe() if {"sample", "sysinfo"} & set(self.cadences) else None
        self.gpus = gpus
        self.sampler = Sampler(config.sample, gpus) if "sample" in self.cadences else None
        p = config.programs
        self.slurm = jobs.slurm_client({"sacct": p.sacct, "scontrol": p.scontrol,
                                        "sinfo": p.sinfo})
        self.coder = (DeltaCoder(config.jobs.full_record_every)
                      if config.jobs.delta_coding else None)

    def run(self, op: str, now: float) -> list[dict[str, Any]]:
        try:
            return getattr(self, f"_{op}")(now)
        except SlurmError as exc:
            log.warning("%s: %s", op, exc)
            return [self.envelopes.error(str(exc), now, self.extra_attrs())]
        except Exception as exc:  # collecting failed: say so rather than send nothing
            log.exception("%s failed", op)
            return [self.envelopes.error(f"{op} failed: {exc}", now, self.extra_attrs())]

    def _data(self, kind: str, now: float, attributes: dict[str, Any],
              attrs: Attrs = ()) -> dict[str, Any]:
        return self.envelopes.data(kind, now, attributes, [*attrs, *self.extra_attrs()])

    def _sample(self, now: float) -> list[dict[str, Any]]:
        attributes = {"node": self.envelopes.node, **self.sampler.attributes(now)}
        return [self._data("sample", now, attributes)]

    def _sysinfo(self, now: float) -> list[dict[str, Any]]:
        p = self.config.programs
        attributes = {"node": self.envelopes.node,
                      **sysinfo.attributes(self.gpus, p.topo_svg, p.topo_text)}
        return [self._data("sysinfo", now, attributes)]

    def _job(self, now: float) -> list[dict[str, Any]]:
        settings = self.config.jobs
        records = jobs.collect(self.slurm, settings.window_seconds, settings.uncompleted)
        if settings.dump:
            self._dump_jobs(self._data("job", now, {"slurm_jobs": records}))
        if self.coder is None:
            return [self._data("job", now, {"slurm_jobs": batch})
                    for batch in jobs.batches(records, settings.batch_size)]
        full, deltas = self.coder.encode(records)
        envelopes = [self._data("job", now, {"slurm_jobs": batch}, [(RECORDS_ATTR, "full")])
                     for batch in jobs.batches(full, settings.batch_size)]
        if deltas:
            envelopes += [self._data("job", now, {"slurm_jobs": batch},
                                     [(RECORDS_ATTR, "delta")])
                          for batch in jobs.batches(deltas, settings.batch_size)]
        return envelopes

    def _cluster(self, now: float) -> list[dict[str, Any]]:
        return [self._data("cluster", now, cluster.attributes(self.slurm))]

    def _dump_jobs(self, envelope: dict[str, Any]) -> None:
        """``[jobs] dump``: every pass's records, without delta coding, appended to a file."""
        try:
            with open(self.config.jobs.dump, "a") as f:
                f.write(json.dumps(redacted(envelope), separators=(",", ":")) + "\n")
        except OSError as exc:
            log.warning("[jobs] dump: cannot append to %s: %s", self.config.jobs.dump,
                        exc.strerror)


def redacted(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope without its API token, for dumps and logs."""
    if "token" not in envelope.get("meta", {}):
        return envelope
    return {**envelope, "meta": {**envelope["meta"], "token": "<redacted>"}}
