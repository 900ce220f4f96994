"""What happens when someone types a command, on any platform.

A platform turns its event into an ``Incoming`` (clean text plus who and where) and renders the
``Response``; everything in between — grammar, access, queueing, the answers — is here, once.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chatops import (
    alarms,
    logs_chat,
    monitor_chat,
    notify_chat,
    schedule_chat,
    storage,
    submit_as,
    telemetry_chat,
    texts,
    wakeup,
)
from chatops.access import may_see_job, not_yours, refusal
from chatops.calc import admin as calc_admin
from chatops.calc import store as calc_store
from chatops.calc.config import NAMESPACE as CALC_NAMESPACE
from chatops.calc.submit import Attachment, Submitter, discard
from chatops.calc.submit import usage as submitter_usage
from chatops.events import Requester
from chatops.grammar import (
    Cancel,
    ClusterHistory,
    ClusterStatus,
    Help,
    ListSchedules,
    Logs,
    Matched,
    MissingParameters,
    Notify,
    NotUnderstood,
    PauseSchedule,
    Status,
    TelemetryControl,
    parse,
)
from chatops.job_config import CommandSpec, Config
from chatops.params import args_problem, check_args
from chatops.queue import Queue
from chatops.report import describe_end, failure_report
from chatops.schedule_chat import Answer
from chatops.settings import Settings
from chatops.user_ids import qualified


@dataclass(frozen=True)
class Incoming:
    requester: Requester
    text: str  # already cleaned by the platform: no mention, markup decoded
    attachment: Attachment | None = None  # a file sent with it (a calculation's input)


@dataclass(frozen=True)
class Reply:
    text: str
    code: bool = False  # show as a code block


@dataclass
class Response:
    replies: list[Reply] = field(default_factory=list)
    job_id: int | None = None  # the job this request created or joined
    acknowledged: bool = False  # a command was accepted: platforms may react instead of talk
    refused: bool = False
    understood: bool = True
    no_such_job: bool = False  # the job id asked about does not exist
    starts_at: float | None = None  # the job was scheduled to start later (or is held)
    unstored: bool = False  # refused because the database cannot store it (chatops.storage)

    def say(self, text: str, code: bool = False) -> Response:
        self.replies.append(Reply(text, code))
        return self


class CommandHandler:
    def __init__(self, settings: Settings, config: Config, queue: Queue):
        self.settings = settings
        self.config = config
        self.queue = queue

    def handle(self, incoming: Incoming) -> Response:
        if "\x00" in incoming.text:  # no command takes one; PostgreSQL and exec refuse them
            return Response(understood=False).say(
                "That text contains a NUL character (\\0), which no command accepts; "
                "type it again without it.")
        parsed = parse(incoming.text, self.config)
        try:
            return self._calc_route(incoming) or self._handle(parsed, incoming.requester)
        except Exception as exc:  # a full disk, a read-only database: say so, store nothing
            found = storage.fault(exc)
            if found is None:
                raise
        what = "new jobs" if isinstance(parsed, Matched) else "that"
        return Response(refused=True, unstored=True).say(
            f"The service cannot store {what} right now: {found.short}. Nothing was "
            "changed; please try again later.")

    def _calc_route(self, incoming: Incoming) -> Response | None:
        """Calculations, their users' and admins' commands, and blocked users (chatops/calc/);
        None: the command is none of these."""
        who = incoming.requester
        words = incoming.text.split()
        if incoming.attachment is not None or (words and words[0].lower() == "run"):
            return self._calculation(incoming, words)
        if self.config.runners:  # calculations are on: someone an admin blocked is refused
            blocked = calc_store.effective_user(self.queue.engine, who.qualified_user)
            if blocked is not None and blocked.blocked:
                reason = f" (reason: {blocked.block_reason})" if blocked.block_reason else ""
                return Response(refused=True).say(
                    f"Sorry, you are blocked{reason}. Ask an admin if this is a mistake.")
        if words and words[0].lower() in calc_admin.WORDS and (
                words[0].lower() not in {n.lower() for n in self.config.namespaces}):
            answer = calc_admin.CalcAdmin(
                self.settings, self.config, self.queue,
                lambda job_id, by: self._cancel_job(job_id, by).replies[0].text,
            ).handle(who, words)
            return _said(answer)
        return None

    def _handle(self, parsed, who: Requester) -> Response:
        if isinstance(parsed, Help):
            if parsed.namespace is None:
                return Response().say(texts.general_help(self.config))
            return Response().say(texts.namespace_help(self.config.namespaces[parsed.namespace]))
        if isinstance(parsed, Status):
            return Response().say(self.status_text(who))
        if isinstance(parsed, NotUnderstood):
            response = Response(understood=False)
            return response.say(texts.not_understood(parsed.text, self.config, parsed.namespace,
                                                     parsed.reason, parsed.suggestion))
        if isinstance(parsed, MissingParameters):
            return Response(understood=False).say(
                texts.missing_parameters(parsed.text, parsed.command, parsed.missing))
        if isinstance(parsed, Cancel):
            return self._cancel_job(parsed.job_id, who)
        if isinstance(parsed, Logs):
            return self._logs(parsed.job_id, parsed.stderr, who)
        if isinstance(parsed, Notify):
            return _said(notify_chat.notify(self.queue.engine, parsed.on, who))
        if isinstance(parsed, ListSchedules):
            return Response().say(schedule_chat.list_schedules(self.config, self.queue.engine))
        if isinstance(parsed, PauseSchedule):
            answer = schedule_chat.pause_or_resume(self.config, self.queue.engine,
                                                   parsed.namespace, parsed.name, parsed.pause, who)
            return _said(answer)
        if isinstance(parsed, TelemetryControl):
            return _said(telemetry_chat.control(self.config, parsed, who, self._tell_admins))
        if isinstance(parsed, ClusterStatus):
            return Response().say(monitor_chat.cluster_status(self.config, self.queue.engine,
                                                              parsed.name))
        if isinstance(parsed, ClusterHistory):
            return Response().say(monitor_chat.cluster_history(
                self.config, self.queue.engine, parsed.name, parsed.window))
        assert isinstance(parsed, Matched)
        namespace = self.config.namespaces[parsed.command.namespace]
        why_not = refusal(namespace, who)
        if why_not:
            return Response(refused=True).say(why_not)
        return self._run_command(parsed.command, parsed.args, who)

    def _calculation(self, incoming: Incoming, words: list[str]) -> Response:
        """``run [runner] [on cluster] [args…]`` with a file: chatops/calc/submit.py."""
        submitter = Submitter(self.settings, self.config, self.queue)
        if words and words[0].lower() != "run":
            return Response(understood=False).say(
                "To run a file, send it with the caption `run [runner] [on cluster] [args…]` "
                "(or no caption).")
        if incoming.attachment is None and not self.config.runners:
            return Response(understood=False).say(submitter_usage(self.config))
        if incoming.attachment is None:
            return Response(understood=False).say(
                f"`run` needs an input file. {submitter_usage(self.config)}")
        outcome = submitter.submit(incoming.requester, words[1:], incoming.attachment)
        return Response(job_id=outcome.job_id, refused=outcome.refused,
                        acknowledged=outcome.job_id is not None).say(outcome.text)

    def status_text(self, who: Requester | None = None) -> str:
        """Running and scheduled jobs: those ``who`` may see (all when None); the next fires."""
        running, queued = self.queue.jobs_in(("running",)), self.queue.jobs_in(("queued",))
        if who is not None:
            running = [job for job in running if self.may_see(job, who)]
            queued = [job for job in queued if self.may_see(job, who)]
        alive = self.queue.dispatcher_alive() if running or queued else True
        text = texts.status(running, queued, self.queue.suppressions(),
                            slurm=self.queue.slurm_jobs_of([job.id for job in running]),
                            dispatcher=alive)
        upcoming = schedule_chat.next_fires(self.config, self.queue.engine, time.time())
        return f"{text}\n{upcoming}" if upcoming else text

    def _tell_admins(self, text: str) -> None:
        if self.config.admin_channel:
            alarms.queue_notice(self.queue, self.config.admin_channel, text)

    def may_see(self, job, who: Requester) -> bool:
        """Whether ``who`` may see ``job`` (a jobs row): chatops/access.py has the rule."""
        return may_see_job(self.config, job, who, lambda: [
            qualified(s.platform, s.user or "") for s in self.queue.subscribers_of(job.id)])

    # -- configured commands ----------------------------------------------------------------

    def _run_command(self, command: CommandSpec, args: dict[str, str], who: Requester
                     ) -> Response:
        job_type = f"{command.namespace}_{command.job_type}"
        if command.action == "schedule_job":
            return self._schedule(command, job_type, args, who)
        if command.action == "cancel_job":
            cancelled = [job_id for job_id in self.queue.pending_of_type(job_type)
                         if self._end_queued(job_id, who)]
            if not cancelled:
                return Response().say(f"There are no scheduled `{job_type}` jobs to cancel.")
            listed = ", ".join(str(i) for i in cancelled)
            return Response(acknowledged=True).say(
                f"Cancelled {texts.plural(len(cancelled), 'scheduled job')} of `{job_type}` "
                f"({listed}).")
        if command.action == "schedule_suppression":
            return self._suppress(job_type, args, who)
        removed = self.queue.unsuppress(job_type)
        if not removed:
            return Response().say(f"`{job_type}` was not suppressed.")
        wakeup.notify(self.settings.run_dir, "dispatcher")
        return Response(acknowledged=True).say(
            f"Removed {texts.plural(removed, 'suppression')} of `{job_type}`; its scheduled jobs "
            "can run now.")

    def _schedule(self, command: CommandSpec, job_type: str, args: dict[str, str],
                  who: Requester) -> Response:
        spec = self.config.job(job_type)
        assert spec is not None  # validated with the config
        args, problem = check_args(spec.param_types, args)
        if problem:
            return Response(understood=False).say(
                f"Not queued: {problem} (`{command.namespace} {command.pattern}`).")
        problem = args_problem(args)
        if problem:
            return Response(understood=False).say(
                f"Not queued: {problem}. Put long input in a file the job reads instead.")
        unbound = submit_as.refusal(self.queue.engine, self.config.clusters, spec.cluster,
                                    who.platform, who.user)
        if unbound:
            return Response(refused=True).say(f"Not queued: {unbound}.")
        personal = spec.cluster in submit_as.requester_clusters(self.config.clusters)
        result = self.queue.enqueue(job_type, args, who, timeout=spec.timeout,
                                    concurrency=spec.concurrency, delay=command.delay_seconds,
                                    personal=personal)
        wakeup.notify(self.settings.run_dir, "dispatcher")
        response = Response(job_id=result.job_id, acknowledged=True)
        now = time.time()
        if result.joined:
            response.say(f"Job {result.job_id} (`{job_type}`) with the same arguments is "
                         "already scheduled; you will get its report too.")
        elif result.start_after > now + 1:
            response.starts_at = result.start_after
            response.say(f"Job {result.job_id} (`{job_type}`) will start at "
                         f"{texts.clock(result.start_after)} "
                         f"(in {texts.ago(result.start_after - now)}).")
        elif spec.concurrency is not None and result.running_ahead >= spec.concurrency:
            ahead = ("the one running now" if result.running_ahead == 1 else
                     f"one of the {result.running_ahead} running now")
            response.say(f"Job {result.job_id} (`{job_type}`) will start when {ahead} "
                         "finishes.")
        held = texts.held_until(job_type, max(now, result.start_after),
                                self.queue.suppressions(now))
        if held is not None:
            response.starts_at = held
            response.say(f"`{job_type}` is suppressed until {texts.clock(held)}; job "
                         f"{result.job_id} will run after that.")
        return response

    def _suppress(self, job_type: str, args: dict[str, str], who: Requester) -> Response:
        start, problem = _today_at(args.get("start_at", ""))
        end, problem_end = _today_at(args.get("end_at", ""))
        if problem or problem_end:
            return Response(understood=False).say(problem or problem_end)
        if start >= end:
            return Response(understood=False).say(
                f"The start ({args['start_at']}) must be before the end ({args['end_at']}); "
                "both are today, UTC.")
        self.queue.suppress(job_type, start, end, who.qualified_user)
        return Response(acknowledged=True).say(
            f"`{job_type}` jobs are suppressed from {texts.clock(start)} to "
            f"{texts.clock(end)}; jobs scheduled meanwhile wait until then.")

    # -- built-ins --------------------------------------------------------------------------

    def _job_for(self, job_id: int, who: Requester):
        job = self.queue.get(job_id)
        if job is None:
            return None, Response(understood=False, no_such_job=True).say(
                f"There is no job {job_id}. `status` lists the current jobs.")
        if not self.may_see(job, who):
            return None, Response(refused=True).say(not_yours(job_id))
        return job, None

    def _end_queued(self, job_id: int, who: Requester) -> bool:
        job = self.queue.get(job_id)
        if job is None:
            return False
        what = describe_end("cancelled", None, job.timeout, cancelled_by=canceller(job, who))
        report = failure_report(job_id, job.job_type, job.namespace, "cancelled", what, None)
        # Reports queued (at least the requester's) only when this call ended the job.
        ended = self.queue.finish(job_id, "cancelled", summary=what,
                                  payload=report.to_payload(), only_from=("queued",)) > 0
        if ended and job.namespace == CALC_NAMESPACE:  # never reached Slurm: nothing spent
            discard(self.settings, self.queue, job, "cancelled before it was submitted")
        wakeup.notify(self.settings.run_dir, "outbox")
        return ended

    def _cancel_job(self, job_id: int, who: Requester) -> Response:
        job, problem = self._job_for(job_id, who)
        if problem:
            return problem
        state = self.queue.request_cancel(job_id, canceller(job, who))
        if state == "queued" and self._end_queued(job_id, who):
            return Response(acknowledged=True).say(
                f"Cancelled job {job_id} (`{job.job_type}`) before it started.")
        if state in ("queued", "running"):  # it started meanwhile, or was running
            if state == "queued":
                self.queue.request_cancel(job_id, canceller(job, who))
            if not self.queue.dispatcher_alive():  # the request waits in the queue
                return Response(acknowledged=True).say(
                    f"No dispatcher is running, so job {job_id} (`{job.job_type}`) cannot be "
                    f"stopped now: the cancel will be carried out when one starts (`chatops "
                    f"run` or `chatops dispatcher`), and its report will follow then.")
            wakeup.notify(self.settings.run_dir, "dispatcher")
            return Response(acknowledged=True).say(
                f"Stopping job {job_id} (`{job.job_type}`); its report will follow.")
        return Response().say(f"Job {job_id} (`{job.job_type}`) already ended ({state}).")

    def _logs(self, job_id: int, stderr: bool, who: Requester) -> Response:
        job, problem = self._job_for(job_id, who)
        if problem:
            return problem
        line, output = logs_chat.answer(self.settings.logs_dir, self.queue, job, stderr)
        response = Response().say(line)
        return response.say(output, code=True) if output else response


def canceller(job, who: Requester) -> str:
    """How a job's report names who cancelled it: nothing when its requester did, else the name
    they show and the id nobody can borrow."""
    if who.qualified_user == qualified(job.platform or "", job.requested_by or ""):
        return ""
    if who.user_name and who.user_name != who.user:
        return f"{who.user_name} ({who.qualified_user})"
    return who.qualified_user


def _said(answer: Answer | calc_admin.Answer) -> Response:
    """The answer of a command module (schedule_chat.Answer, calc/admin.Answer) as a Response."""
    return Response(refused=answer.refused, understood=answer.understood,
                    acknowledged=answer.acknowledged).say(answer.text)


def _today_at(value: str) -> tuple[float, str | None]:
    """``HH:MM`` or ``HHMM`` today in UTC, as a timestamp; or a message saying what is wrong."""
    match = re.fullmatch(r"(\d{1,2}):?(\d{2})", value.strip())
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return (today + timedelta(hours=int(match[1]), minutes=int(match[2]))).timestamp(), None
    return 0.0, (f"`{value}` is not a time: use HH:MM or HHMM (24-hour, UTC), "
                 "for example 09:30 or 0930.")
