"""A calculation's run: a Slurm batch job whose input came from chat and whose results go back.

It is a ``BatchRun`` (recorded before sbatch, never submitted twice, tracked, handed over at a
restart) with three differences: its folder is ``<upload_path>/<person>/<calculation id>/`` and
holds the input file sent from chat; a calculation that never reached Slurm gives its quota unit
back and leaves no folder behind; and when it ends, its result files are fetched over the same
pooled connection (capped per file and in total; too many come as one .tar.gz), copied to the
site's WebDAV folder when it has one (chatops/calc/webdav.py), given download links for the
platforms that would not take them (chatops/calc/links.py) and attached to its report, which
says how it went (state, exit code, elapsed, efficiency, hints).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import os
import posixpath
import shutil
import tarfile
from pathlib import Path
from typing import Any

from chatops import privileges, wakeup
from chatops.calc import audit, files, links, store, webdav
from chatops.calc.config import RunnerSpec
from chatops.calc.submit import discard
from chatops.job_config import Config, JobSpec
from chatops.joblogs import JobLogs
from chatops.notify.config import NotifyConfig
from chatops.notify.stats import hints
from chatops.report import Report
from chatops.slurm.acct import job_efficiency
from chatops.slurm.client import CommandResult
from chatops.texts import duration, percent, size
from dispatcher.batch import BatchExecutor, BatchRun
from dispatcher.ssh import ClusterUnreachable, PrepareFailed


def _private(mode: int):
    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mode, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, "", ""
        return info

    return reset


class CalcRun(BatchRun):
    def __init__(self, executor: CalcExecutor, job_id: int, spec: JobSpec, logs: JobLogs,
                 runner: RunnerSpec, calc_row: int | None = None):
        super().__init__(executor, job_id, spec, "", logs)
        self.runner = runner
        self.config = executor.config
        self._calc_row = calc_row
        self.calc = None  # its record: read in the run's thread (``_load``), not the loop's
        self.file_name = "?"
        self.results: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.webdav_folder: str | None = None
        self.refunded = False
        self._staging: tuple[str, bytes] | None = None  # (folder, tar) for the sbatch

    def _load(self) -> bool:
        """The calculation's record (False: there is none)."""
        engine = self.executor.queue.engine
        row = store.of_job(engine, self.job_id)
        if row is None and self._calc_row is not None:  # claimed before its submitter linked
            store.attach_job(engine, self._calc_row, self.job_id)
            row = store.of_job(engine, self.job_id)
        self.executor.queue.release_connection()
        if row is None:
            self.error = "it has no calculation record"
            return False
        self.calc = row
        self.file_name = row.file_name
        self.command = self.runner.command(row.file_name, json.loads(row.args))
        return True

    def resume(self, record) -> None:
        if self._load():
            super().resume(record)

    @property
    def name(self) -> str:
        return f"Calculation {self.job_id} (`{self.file_name}`)"

    def workdir(self) -> str:
        upload = self.connection.spec.upload_path.removeprefix("~/")
        return posixpath.join(upload, files.person_folder(self.calc.person), str(self.job_id))

    def submitted_text(self) -> str:
        return (f"`{self.file_name}` submitted as calculation {self.job_id} (Slurm job "
                f"{self.slurm_id} on cluster {self.spec.cluster}).")

    def _input(self) -> Path:
        args = json.loads(self.executor.queue.get(self.job_id).args)
        self.executor.queue.release_connection()
        return files.input_path(self.executor.settings, args["input"], self.file_name)

    def _stage(self, workdir: str, script: str) -> None:
        """The input and the script as a tar stream unpacked in the folder (made 700), the input
        600 and the script 700: sent with the sbatch that follows, on one exec channel (``_run``),
        or alone when the job passes variables to sbatch on its stdin."""
        store.set_remote_dir(self.executor.queue.engine, self.job_id, workdir)
        body = f"#!/bin/bash\n# chatops calculation {self.job_id} ({self.runner.name})\n"
        body += (self.slurm.setup.rstrip("\n") + "\n" if self.slurm.setup else "")
        body += self.command + "\n"
        stream = io.BytesIO()
        with tarfile.open(fileobj=stream, mode="w") as archive:
            archive.add(self._input(), arcname=self.file_name, filter=_private(0o600))
            info = tarfile.TarInfo(posixpath.basename(script))
            info.size, info.mode = len(body.encode()), 0o700
            archive.addfile(info, io.BytesIO(body.encode()))
        if not self.env:  # sent with the sbatch that follows (``_run``)
            self._staging = (workdir, stream.getvalue())
            return
        self.account.unpack(workdir, stream.getvalue())

    def _run(self, argv: list[str], timeout: float) -> CommandResult:
        """sbatch after the staging (``_stage``), in one round trip."""
        if argv[0] != "sbatch" or self._staging is None:
            return super()._run(argv, timeout)
        (workdir, data), self._staging = self._staging, None
        try:
            return self.account.unpack_then_slurm(workdir, data, argv, timeout)
        except PrepareFailed as exc:  # as a failed staging alone: nothing reached Slurm
            raise ConnectionError(f"could not upload its files to cluster {self.spec.cluster}: "
                                  f"cannot write into {workdir}: {exc}") from exc

    def main(self) -> None:
        if not self._load():
            return
        super().main()
        if self.slurm_id is None and self._stop is not None and not self.refunded:
            job = self.executor.queue.get(self.job_id)  # cancelled before it was submitted
            self.executor.queue.release_connection()
            discard(self.executor.settings, self.executor.queue, job,
                    "cancelled before it was submitted")
            self.refunded = True

    def _submit(self) -> bool:
        ok = super()._submit()
        if ok:
            shutil.rmtree(self._input().parent, ignore_errors=True)  # on the cluster now
        return ok

    def _rejected(self, why: str, state: str = "rejected") -> bool:
        super()._rejected(why, state)
        if state != "rejected":  # the answer was lost: it may be in Slurm, keep what it needs
            return False
        with contextlib.suppress(ConnectionError, TimeoutError, ClusterUnreachable, OSError):
            self.account.remove(self.workdir())
        shutil.rmtree(self._input().parent, ignore_errors=True)
        self.refunded = store.refund(self.executor.queue.engine, self.job_id, why)
        return False

    # -- results ----------------------------------------------------------------------------

    def _collect(self) -> None:
        super()._collect()
        if self.error or self.done:
            return
        try:
            self._fetch_results()
        except (ConnectionError, TimeoutError, ClusterUnreachable, OSError) as exc:
            self.notes.append(f"The result files could not be fetched: {exc}.")
        self._copy_to_webdav()
        engine = self.executor.queue.engine
        store.record_end(engine, self.job_id, self.workdir(),
                         {"files": [f["name"] for f in self.results], "notes": self.notes})
        self.results = links.attach(self.executor.settings, engine, self.job_id, self.results)

    def _copy_to_webdav(self) -> None:
        url = webdav.configured(self.executor.settings.environ)
        if not url or not self.results:
            return
        folder = [files.person_folder(self.calc.person), str(self.job_id)]
        try:
            self.webdav_folder = webdav.copy(url, folder, self.results)
        except (webdav.WebDAVError, OSError) as exc:
            self.notes.append(f"The result files could not be copied to the site's WebDAV "
                              f"folder: {exc}.")

    def _wanted(self, name: str) -> bool:
        if self.runner.results:
            return any(fnmatch.fnmatchcase(name, glob) for glob in self.runner.results)
        own = (self.file_name, f"chatops-{self.job_id}.sh", f"chatops-{self.job_id}.out")
        return name not in own and files.extension(name) in self.config.calc.result_extensions

    def _fetch_results(self) -> None:
        workdir, cluster = self.workdir(), self.spec.cluster
        timeout = max(self.connection.spec.command_timeout, 300)
        listing = self.account.listing(workdir, timeout)
        if listing.returncode != 0:
            self.notes.append(f"The results folder {workdir} on cluster {cluster} is gone: no "
                              "result files could be fetched.")
            return
        found = sorted((line.split(" ", 1)[1], int(line.split(" ", 1)[0]))
                       for line in listing.stdout.splitlines() if " " in line)
        wanted = [(name, length) for name, length in found if self._wanted(name)]
        if not wanted:
            self.notes.append(f"No result files were found in {workdir}.")
            return
        calc = self.config.calc
        target = files.results_dir(self.executor.settings, self.job_id)
        target.mkdir(parents=True, exist_ok=True)
        self._give(target.parent)
        self._give(target)
        if len(wanted) > calc.max_result_files:
            return self._fetch_archive(workdir, wanted, target, timeout)
        total = 0
        for name, length in wanted:
            where = f"it stays on cluster {cluster} in {workdir}"
            if length > calc.max_result_bytes:
                self.notes.append(f"`{name}` ({size(length)}) is larger than the "
                                  f"{size(calc.max_result_bytes)} a result file may be; {where}.")
                continue
            if total + length > calc.max_results_bytes:
                self.notes.append(f"`{name}` ({size(length)}) would pass the "
                                  f"{size(calc.max_results_bytes)} sent back per calculation; "
                                  f"{where}.")
                continue
            self._fetch(self.account.read(posixpath.join(workdir, name), timeout),
                        target / name, name)
            total += length

    def _fetch_archive(self, workdir: str, wanted: list[tuple[str, int]], target: Path,
                       timeout: float) -> None:
        calc = self.config.calc
        archive = f"calculation-{self.job_id}-results.tar.gz"
        self.notes.append(f"{len(wanted)} result files (more than {calc.max_result_files}) "
                          f"come as one archive, `{archive}`.")
        self._fetch(self.account.pack(workdir, [name for name, _ in wanted], timeout),
                    target / archive, archive, limit=calc.max_results_bytes)

    def _fetch(self, fetched: tuple[int, bytes, bytes], path: Path, name: str,
               limit: int | None = None) -> None:
        """Keep what ``read`` or ``pack`` fetched, or say why not."""
        status, data, errors = fetched
        if status != 0:
            self.notes.append(f"`{name}` could not be fetched: "
                              f"{errors.decode(errors='replace').strip() or status}.")
            return
        if limit is not None and len(data) > limit:
            self.notes.append(f"`{name}` ({size(len(data))}) is larger than the "
                              f"{size(limit)} sent back; the files stay on cluster "
                              f"{self.spec.cluster} in {self.workdir()}.")
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        self._give(path)
        self.results.append({"path": str(path), "name": name})

    def _give(self, path: Path) -> None:
        """A root dispatcher's results belong to the service account (the owner of
        CHATOPS_CALC_DIR): the bots upload them and the web server serves their links."""
        owner = privileges.owner_for(files.calc_dir(self.executor.settings))
        if owner is not None:
            os.chown(path, *owner)

    # -- the report -------------------------------------------------------------------------

    def adjust_report(self, outcome: str, report: Report, stop_reason: str | None,
                      exit_code: int) -> tuple[str, Report]:
        outcome, base = super().adjust_report(outcome, report, stop_reason, exit_code)
        details = dict(base.details)
        where = f"runner `{self.runner.name}` on cluster {self.spec.cluster}"
        if self.error:
            lines = [f"{self.name} was not submitted: {self.error}."]
            if self.refunded:
                lines.append("It does not count against your quota.")
        else:
            lines = [f"{self.name}, {where}: {details.get('summary', outcome)}."]
            lines += self._summary()
            if self.results:
                lines.append("Result files: " + ", ".join(f"`{f['name']}`" for f in self.results)
                             + ".")
            if self.webdav_folder:
                lines.append(f"They are also in the site's WebDAV folder: {self.webdav_folder}")
            lines += self.notes
        text = "\n".join(lines)
        self._audit(outcome, lines[0])
        return outcome, Report(job_id=self.job_id, job_type=self.spec.type,
                               namespace=self.spec.namespace, outcome=outcome, text=text,
                               details=details, files=list(self.results))

    def _summary(self) -> list[str]:
        job = self.acct.job if self.acct else None
        if job is None:
            return [f"Slurm job {self.slurm_id}: no accounting record was found."]
        eff = job_efficiency(self.acct)
        limit = (f" of {duration(eff.time_limit)}"
                 if eff.time_limit not in (None, float("inf")) else "")
        lines = [f"Slurm job {self.slurm_id}: {job.state}, exit code {job.exit_code}, elapsed "
                 f"{duration(eff.elapsed)}{limit}.",
                 f"CPU efficiency {percent(eff.cpu_efficiency)}, memory efficiency "
                 f"{percent(eff.memory_efficiency)} ({size(eff.memory_used_bytes)} of "
                 f"{size(eff.memory_requested_bytes)})."]
        return lines + [f"Hint: {hint}" for hint in hints(job.state, eff, NotifyConfig())]

    def _audit(self, outcome: str, line: str) -> None:
        action = "refunded" if self.refunded else outcome
        with contextlib.suppress(Exception):  # the audit never costs the user their report
            audit.record(self.executor.queue, self.config.audit_channel, action,
                         f"{self.calc.person}: {line}", subject=self.calc.person,
                         calc_id=self.job_id)
            self.executor.queue.release_connection()
            wakeup.notify(self.executor.settings.run_dir, "outbox")


class CalcExecutor(BatchExecutor):
    """Starts calculations (runs of a runner) and tracks them again after a restart."""

    def __init__(self, *args, config: Config, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config

    def start(self, job_id: int, spec: JobSpec, args, logs: JobLogs,
              has_fabfile: bool = False) -> CalcRun:
        run = CalcRun(self, job_id, spec, logs, self.config.runners[spec.type],
                      calc_row=args.get("calc"))
        run.start_thread(run.main)
        return run

    def resume(self, job_id: int, spec: JobSpec, logs: JobLogs, record) -> CalcRun:
        run = CalcRun(self, job_id, spec, logs, self.config.runners[spec.type])
        run.start_thread(lambda: run.resume(record))
        return run
