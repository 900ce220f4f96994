"""``chatops chat`` and ``chatops jobs``: talk to the service as the console platform, and look
at the job history."""

from __future__ import annotations

import argparse
import getpass
import json
import select
import sys
import time
import uuid

from chatops import service as svc
from chatops.cli_types import count, row_id
from chatops.db import JOB_STATES
from chatops.joblogs import job_logs, pruned
from chatops.texts import clock, duration, exit_status, when
from chatops.user_ids import user_id_problem

STATES = JOB_STATES
TIMES = ("created_at", "start_after", "started_at", "finished_at")


def add_parsers(sub: argparse._SubParsersAction, epilog: str) -> None:
    chat = sub.add_parser("chat", help="send TEXT as the console platform, wait for the "
                          "replies and print them", epilog=epilog)
    chat.add_argument("text", help='the command, e.g. "example say hello Bob"')
    chat.add_argument("--user", default=None, help="who is asking (default: your login)")
    chat.add_argument("--file", default=None, metavar="PATH",
                      help='send this file with TEXT: a calculation\'s input, e.g. '
                      '--file water.gjf "run gaussian -c=4"')
    chat.add_argument("--timeout", type=float, default=3600,
                      help="seconds to wait for a job's report (3600)")
    chat.add_argument("--no-wait", action="store_true", help="do not wait for the report")
    chat.set_defaults(func=cmd_chat)

    jobs = sub.add_parser("jobs", help="the job history", epilog=epilog)
    jobs_sub = jobs.add_subparsers(metavar="ACTION")
    jobs.set_defaults(func=lambda args: usage(jobs))
    listing = jobs_sub.add_parser("list", help="recent jobs, newest first", epilog=epilog)
    listing.add_argument("--namespace", help="only the jobs of this namespace")
    listing.add_argument("--state", choices=STATES, help="only the jobs in this state")
    listing.add_argument("--user", help="only the jobs this user asked for, as the history "
                         "shows them (e.g. alice, web:admin)")
    listing.add_argument("--limit", type=count, default=30, help="at most this many (30)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line, "
                         "times as UNIX seconds")
    listing.set_defaults(func=cmd_jobs_list)
    show = jobs_sub.add_parser("show", help="everything about one job", epilog=epilog)
    show.add_argument("job_id", type=row_id, help="the job's number")
    show.set_defaults(func=cmd_jobs_show)
    cancel = jobs_sub.add_parser("cancel", help="cancel a queued job or stop a running one",
                                 epilog=epilog)
    cancel.add_argument("job_id", type=row_id, help="the job's number")
    cancel.set_defaults(func=cmd_jobs_cancel)
    logs = jobs_sub.add_parser("logs", help="print a job's stdout (or --stderr), also while it "
                               "runs", epilog=epilog)
    logs.add_argument("job_id", type=row_id, help="the job's number")
    logs.add_argument("--stderr", action="store_true", help="its stderr instead")
    logs.set_defaults(func=cmd_jobs_logs)


def usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return svc.EXIT_USAGE


# -- the console platform -----------------------------------------------------------------------

def cmd_chat(args: argparse.Namespace) -> int:
    from chatops import wakeup
    from chatops.commands import CommandHandler, Incoming
    from chatops.events import Requester
    from chatops.plain_text import render_delivery, render_response
    from chatops.platform import take_waiting

    if args.user is not None and user_id_problem(f"console:{args.user}"):
        print(f"chatops chat: --user {args.user!r} is not a login name (letters, digits, '_', "
              "'.', '-'; no spaces): name who is asking, or leave --user out for your own login",
              file=sys.stderr)
        return svc.EXIT_USAGE
    attachment = None
    if args.file:
        attachment = _attachment(args.file)
        if attachment is None:
            return svc.EXIT_USAGE
    service = svc.open_service()
    settings = service.settings
    svc.ensure_dirs(settings, "CHATOPS_RUN_DIR")
    channel = f"cli-{uuid.uuid4().hex[:12]}"
    user = args.user or getpass.getuser()
    requester = Requester(platform="console", user=user, channel=channel, user_name=user,
                          is_direct=True, is_guest=False)
    listener = wakeup.Listener(settings.run_dir, "outbox")  # before the job can end
    try:
        response = CommandHandler(settings, service.config, service.queue).handle(
            Incoming(requester, args.text, attachment))
        for line in render_response(response):
            print(line, flush=True)
        # Slurm notifications for this person (`notify me` on the console) waited for a session
        for delivery in take_waiting(service.queue, "console", user):
            print(render_delivery(delivery), flush=True)
        if response.no_such_job:
            return svc.EXIT_NOT_FOUND
        if response.unstored:
            return svc.EXIT_ENVIRONMENT
        if response.refused or not response.understood:
            return svc.EXIT_FAILED
        if response.job_id is None:
            return 0
        print(f"(job {response.job_id})", file=sys.stderr, flush=True)
        if args.no_wait:
            return 0
        if response.starts_at is not None:  # the console does not sit waiting for it
            print(f"(it starts later: follow it with `chatops jobs show {response.job_id}`)",
                  file=sys.stderr, flush=True)
            return 0
        if not service.queue.dispatcher_alive():
            print("(no dispatcher is running: the job waits in the queue until one starts — "
                  "`chatops run` or `chatops dispatcher`)", file=sys.stderr, flush=True)
        deadline = time.time() + args.timeout
        while time.time() < deadline:
            for delivery in (take_waiting(service.queue, "console", channel)
                             + take_waiting(service.queue, "console", user)):
                print(render_delivery(delivery), flush=True)
                report = delivery.report
                if report is not None and report.job_id == response.job_id:
                    return 0 if report.succeeded else svc.EXIT_FAILED
            select.select([listener], [], [], min(1.0, max(0.0, deadline - time.time())))
            listener.drain()
        print(f"(gave up waiting after {args.timeout:g} s; job {response.job_id} goes on: "
              f"`chatops jobs show {response.job_id}`)", file=sys.stderr)
        return svc.EXIT_FAILED
    finally:
        listener.close()


def _attachment(path: str):
    """The file of ``--file``, read only once the checks are passed; None: it cannot be read."""
    import os

    from chatops.calc.submit import Attachment

    try:
        length = os.stat(path).st_size
    except OSError as exc:
        print(f"chatops: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None

    def fetch() -> bytes:
        with open(path, "rb") as f:
            return f.read()

    return Attachment(os.path.basename(path), length, fetch)


# -- the job history ----------------------------------------------------------------------------

def _job_line(job) -> str:
    moment = clock(job.finished_at or job.started_at or job.start_after, date=True)
    return (f"{job.id:>6}  {job.state:<10} {job.job_type:<28} {moment:<24} "
            f"{job.requested_by or '':<12} {job.summary or ''}")


def cmd_jobs_list(args: argparse.Namespace) -> int:
    service = svc.open_service()
    rows = service.queue.history(args.limit, namespace=args.namespace, state=args.state,
                                 user=args.user)
    if args.json:
        for row in rows:
            print(json.dumps(dict(row._mapping)))
        return 0
    print(f"{'id':>6}  {'state':<10} {'type':<28} {'when':<24} {'who':<12} summary")
    for row in rows:
        print(_job_line(row))
    return 0


def _get_job(service: svc.Service, job_id: int):
    job = service.queue.get(job_id)
    if job is None:
        print(f"chatops: there is no job {job_id} (`chatops jobs list` shows the history)",
              file=sys.stderr)
    return job


def _shown(key: str, value, job) -> str:
    if value is None:
        return ""
    if key in TIMES:
        return when(value)
    if key == "timeout":
        return f"{value:g} s"
    if key == "exit_code":
        return exit_status(value)
    if key == "state" and job.started_at and job.finished_at:
        return f"{value} (ran {duration(job.finished_at - job.started_at)})"
    return str(value)


def cmd_jobs_show(args: argparse.Namespace) -> int:
    service = svc.open_service()
    job = _get_job(service, args.job_id)
    if job is None:
        return svc.EXIT_NOT_FOUND
    for key, value in job._mapping.items():
        print(f"{key:>16}: {_shown(key, value, job)}")
    how = pruned(service.settings.logs_dir, job)
    folder = job_logs(service.settings.logs_dir, job).folder
    print(f"{'logs':>16}: " + (f"removed {how}" if how else str(folder)))
    for sub in service.queue.subscribers_of(job.id):
        thread = f" thread {sub.thread}" if sub.thread else ""  # none: not in a thread
        print(f"{'subscriber':>16}: {sub.user} on {sub.platform}, channel {sub.channel}"
              f"{thread}")
    return 0


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    from chatops.commands import CommandHandler, Incoming
    from chatops.events import Requester

    service = svc.open_service()
    if _get_job(service, args.job_id) is None:
        return svc.EXIT_NOT_FOUND
    user = getpass.getuser()
    requester = Requester(platform="console", user=user, user_name=user, is_guest=False)
    response = CommandHandler(service.settings, service.config, service.queue).handle(
        Incoming(requester, f"cancel {args.job_id}"))
    for reply in response.replies:
        print(reply.text)
    return 0 if response.acknowledged else svc.EXIT_FAILED


def cmd_jobs_logs(args: argparse.Namespace) -> int:
    service = svc.open_service()
    job = _get_job(service, args.job_id)
    if job is None:
        return svc.EXIT_NOT_FOUND
    stream = "stderr" if args.stderr else "stdout"
    if job.state == "queued":
        print(f"chatops: job {job.id} has not started yet", file=sys.stderr)
        return svc.EXIT_FAILED
    how = pruned(service.settings.logs_dir, job)
    if how:
        print(f"chatops: the logs of job {job.id} were removed {how}", file=sys.stderr)
        return svc.EXIT_FAILED
    batch = service.queue.slurm_submission(job.id)
    if args.stderr and batch is not None and batch.slurm_job_id is not None:
        print(f"chatops: job {job.id} is Slurm job {batch.slurm_job_id}, whose stderr Slurm "
              f"writes into the same file as its stdout ({batch.output_path}): `chatops jobs "
              f"logs {job.id}` shows both", file=sys.stderr)
        return svc.EXIT_FAILED
    path = job_logs(service.settings.logs_dir, job).path(stream)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(65536):
                sys.stdout.buffer.write(chunk)
    except FileNotFoundError:  # nothing written to that stream (yet): say so, on stderr
        if job.state != "running":
            print(f"(job {job.id} wrote nothing to {stream})", file=sys.stderr)
    except OSError as exc:
        print(f"chatops: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return svc.EXIT_FAILED
    sys.stdout.flush()
    if job.state == "running":
        print(f"(job {job.id} is still running: this is what it has written so far)",
              file=sys.stderr)
    return 0
