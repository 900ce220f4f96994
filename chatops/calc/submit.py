"""A file sent from chat becomes a calculation: checks first, then one queued Slurm batch job.

Everything that can be refused is refused before anything touches the cluster, with one message
that says what was wrong and what to do: the file's name and size, the runner (by the file's
extension or named in the caption ``run [runner] [on cluster] [args…]``) and whether this person
may use it, every argument against the runner's allow-list, a block, the quota. Only then is the
file fetched from the platform, kept here until the dispatcher stages it, and the job queued; a
failure on the way gives the quota unit back and leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from chatops import submit_as, wakeup
from chatops.calc import audit, files, registration, store
from chatops.calc.config import FILE, RunnerSpec
from chatops.events import Requester
from chatops.job_config import Config
from chatops.queue import Queue
from chatops.settings import Settings
from chatops.texts import clock, plural, size


class AttachmentError(Exception):
    """The platform would not give the file (the message says why)."""


@dataclass(frozen=True)
class Attachment:
    """A file sent with a command; ``fetch`` downloads it (after the checks)."""

    name: str
    size: int | None  # as the platform announced it (None: unknown until fetched)
    fetch: Callable[[], bytes]


def download(platform: str, name: str, size: object, url: str, hosts: set[str],
             headers: dict[str, str] | None = None) -> Attachment:
    """An attachment fetched over HTTPS from ``url`` only if it is on one of the platform's own
    ``hosts`` (a forged event must not make the service fetch from anywhere else)."""

    def fetch() -> bytes:
        if urlparse(url).netloc not in hosts:
            raise AttachmentError(f"{platform} gave no download address for the file ({url!r} "
                                  f"is not {platform}'s)")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                        timeout=120) as answer:
                return answer.read()
        except OSError as exc:
            raise AttachmentError(f"{platform} would not give me the file ({exc})") from exc

    return Attachment(name, size if isinstance(size, int) else None, fetch)


@dataclass(frozen=True)
class Outcome:
    text: str
    job_id: int | None = None
    refused: bool = False


@dataclass(frozen=True)
class Asked:
    runner: str | None
    cluster: str | None
    args: tuple[str, ...]


def parse_caption(words: list[str], config: Config) -> Asked:
    """``[runner] [on cluster] [args…]`` (the words after ``run``)."""
    names = {r.name.lower() for r in config.runners.values()}
    runner = cluster = None
    rest = list(words)
    if rest and rest[0].lower() in names:
        runner = rest.pop(0).lower()
    if len(rest) >= 2 and rest[0].lower() == "on" and rest[1] in config.clusters:
        cluster = rest[1]
        rest = rest[2:]
    return Asked(runner, cluster, tuple(rest))


NO_RUNNERS = ("This site has no runners configured for calculations: an admin adds them under "
              "`runners` in job_configs.py (docs/configuration.md).")


def usage(config: Config) -> str:
    if not config.runners:  # "name one" and an empty list would contradict each other
        return NO_RUNNERS
    listed = "; ".join(f"`{r.name}` on {r.cluster} ({', '.join(r.extensions) or 'by name'})"
                       for r in config.runners.values())
    return (f"Send an input file with the caption `run [runner] [on cluster] [args…]`. "
            f"Runners: {listed}.")


def choose_runner(config: Config, asked: Asked, name: str) -> RunnerSpec | str:
    """The runner for the file, or why there is none."""
    if not config.runners:
        return f"Not submitted. {NO_RUNNERS}"
    candidates = [r for r in config.runners.values()
                  if (asked.cluster is None or r.cluster == asked.cluster)
                  and (r.name.lower() == asked.runner if asked.runner
                       else files.extension(name) in (e.lower() for e in r.extensions))]
    if len(candidates) == 1:
        return candidates[0]
    where = f" on cluster {asked.cluster}" if asked.cluster else ""
    if candidates:
        clusters = ", ".join(sorted(r.cluster for r in candidates))
        what = f"runner `{asked.runner}`" if asked.runner else (
            f"`{files.extension(name)}` files")
        return (f"Not submitted: {what} can run on clusters {clusters}: say which, e.g. "
                f"`run {candidates[0].name} on {candidates[0].cluster}`.")
    if asked.runner:
        return f"Not submitted: there is no runner `{asked.runner}`{where}. {usage(config)}"
    ext = files.extension(name) or "(no extension)"
    return (f"Not submitted: no runner{where} takes `{ext}` files. Name one in the caption. "
            f"{usage(config)}")


def check_args(runner: RunnerSpec, given: tuple[str, ...], name: str) -> list[str] | str:
    """The program's arguments (``{}`` replaced by the file's name), or the refusal."""
    if not given:
        return [a.replace(FILE, name) for a in runner.default_args]
    args = [a.replace(FILE, name) for a in given]
    for arg in args:
        if not any(rule.matches(arg, name) for rule in runner.allowed_args):
            allowed = ", ".join(f"`{rule}`" for rule in runner.allowed_args) or "none"
            return (f"Not submitted: the argument `{arg}` is not allowed for runner "
                    f"`{runner.name}`. Allowed ({FILE} is the input file): {allowed}.")
    if name not in args:  # the file is always given to the program
        args.append(name)
    return args


def may_use(config: Config, runner: RunnerSpec, who: Requester) -> str | None:
    me = who.qualified_user
    if not runner.allowed_users and not runner.namespaces or config.is_admin(me):
        return None
    if me in runner.allowed_users:
        return None
    from chatops.access import refusal

    for ns in runner.namespaces:
        namespace = config.namespaces.get(ns)
        if namespace is not None and refusal(namespace, who) is None:
            return None
    return (f"Not submitted: runner `{runner.name}` on cluster {runner.cluster} is limited to "
            f"the people listed for it, and you ({me}) are not one of them. Ask an admin.")


def quota_text(quota: store.Quota) -> str:
    window = "this month" if quota.window == "month" else "in the last 30 days"
    text = f"{quota.used} of {quota.limit} calculations used {window}"
    if quota.resets_at is not None and quota.used:
        text += f"; the next comes back on {clock(quota.resets_at, date=True)}"
    return text


def discard(settings: Settings, queue: Queue, job: object, reason: str) -> None:
    """A calculation ended before it reached Slurm: its unit back, its input file gone."""
    import json

    store.refund(queue.engine, job.id, reason)
    args = json.loads(job.args)
    if "input" in args and "file" in args:
        shutil.rmtree(files.input_path(settings, args["input"], args["file"]).parent,
                      ignore_errors=True)


def new_user_refusal(queue: Queue, config: Config, who: Requester) -> str | None:
    """Why ``who`` may not become a user from where they write (``register_from``); None:
    they may, or are one."""
    if config.calc.register_from is None:
        return None
    me = who.qualified_user
    return registration.refusal(config.calc.register_from, who,
                                is_user=store.user(queue.engine, me) is not None,
                                is_admin=config.is_admin(me))


def audit_refusal(queue: Queue, config: Config, who: Requester, text: str,
                  action: str = "refused") -> None:
    audit.record(queue, config.audit_channel, action,
                 f"{who.qualified_user} ({who.user_name or who.user}): {text}",
                 actor=who.qualified_user, subject=who.qualified_user)


def refuse_registration(queue: Queue, config: Config, who: Requester) -> str | None:
    """"Not registered: …" (audited) when ``who`` may not become a user from here; None: they
    may."""
    refused = new_user_refusal(queue, config, who)
    if not refused:
        return None
    text = f"Not registered: {refused}"
    audit_refusal(queue, config, who, text)
    return text


def register(queue: Queue, config: Config, who: Requester) -> str | None:
    """Make ``who`` a user (Telegram's /start); audited when they are new. The refusal, when
    they may not register from here."""
    refused = refuse_registration(queue, config, who)
    if refused:
        return refused
    if store.register(queue.engine, who.qualified_user, who.user_name):
        registered(queue, config, who)
    return None


def registered(queue: Queue, config: Config, who: Requester) -> None:
    audit.record(queue, config.audit_channel, "registered",
                 f"{who.qualified_user} ({who.user_name or who.user}) is a new user",
                 actor=who.qualified_user, subject=who.qualified_user)


class Submitter:
    def __init__(self, settings: Settings, config: Config, queue: Queue):
        self.settings = settings
        self.config = config
        self.queue = queue

    def refuse(self, who: Requester, text: str, action: str = "refused") -> Outcome:
        audit_refusal(self.queue, self.config, who, text, action)
        return Outcome(text, refused=True)

    def submit(self, who: Requester, words: list[str], attachment: Attachment,
               now: float | None = None) -> Outcome:
        try:
            return self._submit(who, words, attachment, now)
        finally:
            self.queue.release_connection()  # many submitting threads never exhaust the pool

    def _submit(self, who: Requester, words: list[str], attachment: Attachment,
                now: float | None) -> Outcome:
        unregistered = new_user_refusal(self.queue, self.config, who)
        if unregistered:
            return self.refuse(who, f"Not submitted: {unregistered}")
        name = files.normal(attachment.name)
        problem = files.name_problem(name)
        if problem:
            return self.refuse(who, f"Not submitted: the file name `{name}` {problem}. Rename "
                                    "the file and send it again.")
        asked = parse_caption(words, self.config)
        runner = choose_runner(self.config, asked, name)
        if isinstance(runner, str):
            return self.refuse(who, runner)
        if attachment.size is not None and attachment.size > runner.max_input_bytes:
            return self.refuse(who, self._too_large(name, attachment.size, runner))
        refused = may_use(self.config, runner, who)
        if refused:
            return self.refuse(who, refused)
        args = check_args(runner, asked.args, name)
        if isinstance(args, str):
            return self.refuse(who, args)
        unbound = submit_as.refusal(self.queue.engine, self.config.clusters, runner.cluster,
                                    who.platform, who.user)
        if unbound:
            return self.refuse(who, f"Not submitted: {unbound}.")
        taken = store.take(self.queue.engine, self.config.calc, who.qualified_user,
                           who.user_name, cluster=runner.cluster, runner=runner.name,
                           file_name=name, input_bytes=attachment.size or 0, args=args, now=now)
        if taken.registered:
            registered(self.queue, self.config, who)
        if taken.blocked is not None:
            reason = f" (reason: {taken.blocked})" if taken.blocked else ""
            return self.refuse(who, f"Not submitted: you are blocked from running "
                                    f"calculations{reason}. Ask an admin if this is a mistake.")
        if taken.calc_row is None:
            return self.refuse(who, self._over_quota(taken.quota), action="quota")
        return self._queue(who, runner, name, args, attachment, taken)

    def _too_large(self, name: str, got: int, runner: RunnerSpec) -> str:
        return (f"Not submitted: `{name}` is {size(got)}; runner `{runner.name}` takes files "
                f"up to {size(runner.max_input_bytes)}. Send a smaller file.")

    def _over_quota(self, quota: store.Quota) -> str:
        window = "this month" if quota.window == "month" else "in the last 30 days"
        back = (f" The next one comes back on {clock(quota.resets_at, date=True)}."
                if quota.resets_at else "")
        more = ("" if quota.limit >= self.config.calc.approved_quota else
                f" An admin can approve you for {self.config.calc.approved_quota} a month.")
        return (f"Not submitted: you have used all {plural(quota.limit, 'calculation')} of "
                f"your quota {window}.{back}{more}")

    def _queue(self, who: Requester, runner: RunnerSpec, name: str, args: list[str],
               attachment: Attachment, taken: store.Taken) -> Outcome:
        engine = self.queue.engine
        token = secrets.token_hex(8)
        path = files.input_path(self.settings, token, name)
        try:
            data = attachment.fetch()
            if len(data) > runner.max_input_bytes:
                store.forget(engine, taken.calc_row)
                return self.refuse(who, self._too_large(name, len(data), runner))
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            job = self.queue.enqueue(runner.job_type, {"input": token, "file": name,
                                                       "args": args, "calc": taken.calc_row},
                                     who,
                                     timeout=runner.timeout, concurrency=runner.concurrency)
        except AttachmentError as exc:
            store.forget(engine, taken.calc_row)
            return self.refuse(who, f"Not submitted: {exc}. Send the file again.")
        except BaseException:
            store.forget(engine, taken.calc_row)
            shutil.rmtree(path.parent, ignore_errors=True)
            raise
        self.queue.release_connection()  # never hold one connection while taking another
        store.attach_job(engine, taken.calc_row, job.job_id)
        wakeup.notify(self.settings.run_dir, "dispatcher")
        text = (f"Calculation {job.job_id}: `{name}` is queued for runner `{runner.name}` on "
                f"cluster {runner.cluster} ({quota_text(taken.quota)}).")
        audit.record(self.queue, self.config.audit_channel, "submitted",
                     f"{who.qualified_user} ({who.user_name or who.user}) submitted calculation "
                     f"{job.job_id}: `{name}` ({size(len(data))}) with runner `{runner.name}` "
                     f"on cluster {runner.cluster}, arguments {' '.join(args)}",
                     actor=who.qualified_user, subject=who.qualified_user, calc_id=job.job_id)
        return Outcome(text, job_id=job.job_id)
