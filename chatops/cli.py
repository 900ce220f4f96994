"""The ``chatops`` command: run the service, talk to it, inspect jobs, check the config."""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import json
import select
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from chatops.settings import load_settings


def _lazy_module(name: str) -> ModuleType:
    """``name``, executed on first use: `chatops telemetry` runs on compute nodes without the
    service's database, web and chat libraries, which the service's modules import."""
    if name in sys.modules:  # imported already (by a test, or a process composing parts)
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


svc = _lazy_module("chatops.service")
alarms = _lazy_module("chatops.alarms")

EPILOG = """exit codes: 0 ok; 1 what was asked failed (job failed, config errors, refused or not
understood); 2 usage; 3 setup problem (no database, broken config); 4 no such job."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["telemetry"]:  # the daemon imports nothing of the service
        from dispatcher.telemetry.cli import main as telemetry

        return telemetry(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return svc.EXIT_USAGE
    try:
        return args.func(args) or 0
    except svc.SetupError as exc:
        print(f"chatops: {exc}", file=sys.stderr)
        return svc.EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatops", description="Chat-ops for HPC clusters: chat commands become jobs.",
        epilog=EPILOG)
    sub = parser.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", help="all in one process: web server, dispatcher and every "
                         "configured chat platform", epilog=EPILOG)
    run.add_argument("--host", default="127.0.0.1", help="web server address (127.0.0.1)")
    run.add_argument("--port", type=int, default=8080, help="web server port (8080)")
    run.set_defaults(func=cmd_run)

    web = sub.add_parser("web", help="the web server: dashboard, chat console, GitHub webhooks, "
                         "/metrics, /healthz")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    web.add_argument("--port", type=int, default=8080, help="port (8080)")
    web.set_defaults(func=cmd_web)

    dispatcher = sub.add_parser("dispatcher", help="run queued jobs and report their results")
    dispatcher.set_defaults(func=cmd_dispatcher)

    bot = sub.add_parser("bot", help="receive commands from one chat platform and deliver "
                         "its reports")
    bot.add_argument("platform", help="console, slack, telegram, discord, ...")
    bot.add_argument("--register", action="store_true",
                     help="register the platform's slash commands (Discord) and exit")
    bot.set_defaults(func=cmd_bot)

    chat = sub.add_parser("chat", help="send TEXT as the console platform, wait for the "
                          "replies and print them", epilog=EPILOG)
    chat.add_argument("text", help='the command, e.g. "example say hello Bob"')
    chat.add_argument("--user", default=None, help="who is asking (default: your login)")
    chat.add_argument("--timeout", type=float, default=3600,
                      help="seconds to wait for a job's report (3600)")
    chat.add_argument("--no-wait", action="store_true", help="do not wait for the report")
    chat.set_defaults(func=cmd_chat)

    config = sub.add_parser("config", help="check job_configs.py")
    config_sub = config.add_subparsers(metavar="ACTION")
    check = config_sub.add_parser("check", help="validate a config; print a line per "
                                  "namespace, or every error (exit 1)")
    check.add_argument("path", nargs="?", help="the file (default: CHATOPS_CONFIG or "
                       "job_configs.py)")
    check.add_argument("--show-schedules", action="store_true",
                       help="print each schedule's next three run times")
    check.set_defaults(func=cmd_config_check)
    from chatops import config_cli

    config_cli.add_reload_parser(config_sub)

    db = sub.add_parser("db", help="the queue database")
    db_sub = db.add_subparsers(metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="create the database or apply new migrations")
    upgrade.set_defaults(func=cmd_db_upgrade)

    jobs = sub.add_parser("jobs", help="the job history", epilog=EPILOG)
    jobs_sub = jobs.add_subparsers(metavar="ACTION")
    listing = jobs_sub.add_parser("list", help="recent jobs, newest first")
    listing.add_argument("--namespace")
    listing.add_argument("--state")
    listing.add_argument("--user")
    listing.add_argument("--limit", type=int, default=30)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_jobs_list)
    show = jobs_sub.add_parser("show", help="everything about one job")
    show.add_argument("job_id", type=int)
    show.set_defaults(func=cmd_jobs_show)
    cancel = jobs_sub.add_parser("cancel", help="cancel a queued job or stop a running one")
    cancel.add_argument("job_id", type=int)
    cancel.set_defaults(func=cmd_jobs_cancel)
    logs = jobs_sub.add_parser("logs", help="print a job's stdout (or --stderr)")
    logs.add_argument("job_id", type=int)
    logs.add_argument("--stderr", action="store_true")
    logs.set_defaults(func=cmd_jobs_logs)

    from bot.notify import cli as notify_cli
    from dispatcher.telemetry.cli import parser_help as telemetry_help

    notify_cli.add_parser(sub)
    telemetry_help(sub)
    return parser


# -- running the service ------------------------------------------------------------------------

def _stop_on_signals(stop: threading.Event, on_stop=lambda: None) -> None:
    def handler(signum, frame):
        stop.set()
        on_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_dispatcher(args: argparse.Namespace) -> int:
    from chatops import live_config
    from dispatcher.loop import Dispatcher

    service = svc.open_service()
    svc.setup_logging(service.settings)
    with alarms.startup(service, "chatops dispatcher"):
        dispatcher = Dispatcher(service.settings, service.config, service.queue)
    _stop_on_signals(threading.Event(), dispatcher.stop)
    live = live_config.follow(service, "dispatcher", (), dispatcher.reconfigure)
    dispatcher.run()
    live.close()
    return 0


def cmd_bot(args: argparse.Namespace) -> int:
    from bot.registry import platform_class
    from bot.runner import run_platforms
    from chatops import live_config
    from chatops.commands import CommandHandler

    service = svc.open_service()
    svc.setup_logging(service.settings)
    if args.register:
        platform = platform_class(args.platform).create(service)
        try:
            names = platform.register_commands()
        finally:
            platform.close()
        if not names:
            print(f"chatops: {args.platform} has no commands to register", file=sys.stderr)
            return svc.EXIT_USAGE
        print("registered: " + ", ".join(f"/{name}" for name in names))
        return 0
    with alarms.startup(service, f"chatops bot {args.platform}"):
        platform = platform_class(args.platform).create(service)
    stop = threading.Event()
    _stop_on_signals(stop)
    handler = CommandHandler(service.settings, service.config, service.queue)
    live = live_config.follow(service, f"bot {args.platform}", [handler])
    run_platforms(service, [platform], stop, handler)
    live.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bot.runner import configured_platforms, create_platforms, run_platforms
    from chatops import live_config
    from chatops.commands import CommandHandler
    from dispatcher.loop import Dispatcher

    service = svc.open_service()
    svc.setup_logging(service.settings)
    stop = threading.Event()
    with alarms.startup(service, "chatops run"):
        dispatcher = Dispatcher(service.settings, service.config, service.queue)
        _stop_on_signals(stop, dispatcher.stop)
        platforms = create_platforms(service, configured_platforms(service.settings))
        handler = CommandHandler(service.settings, service.config, service.queue)
        web, web_lines = _open_web(service, args.host, args.port, fresh_token=True,
                                   platforms=platforms, handler=handler)
    live = live_config.follow(service, "run", [handler], dispatcher.reconfigure)
    threads = [threading.Thread(target=run_platforms, args=(service, platforms, stop, handler),
                                name="platforms", daemon=True),
               threading.Thread(target=web.run, name="web", daemon=True)]
    for thread in threads:
        thread.start()
    print(f"chatops is running: database {service.queue.engine.url}, "
          f"platforms {', '.join(p.name for p in platforms)}.", *web_lines,
          "In another terminal try: chatops chat \"example say hello Bob\"", sep="\n",
          flush=True)
    dispatcher.run()
    stop.set()
    web.close()
    live.close()
    return 0


def _open_web(service: svc.Service, host: str, port: int, fresh_token: bool,
              platforms: list, handler: Any) -> tuple:
    from webserver.app import open_web

    try:
        return open_web(service, host, port, fresh_token=fresh_token, platforms=platforms,
                        handler=handler)
    except OSError as exc:
        raise svc.SetupError(f"the web server cannot listen on {host}:{port}: {exc.strerror}; "
                             "choose another with --port") from exc


def cmd_web(args: argparse.Namespace) -> int:
    from bot.runner import configured_platforms, create_platforms
    from chatops import live_config
    from chatops.commands import CommandHandler

    service = svc.open_service()
    svc.setup_logging(service.settings)
    with alarms.startup(service, "chatops web"):
        platforms = create_platforms(service, configured_platforms(service.settings))
        handler = CommandHandler(service.settings, service.config, service.queue)
        web, web_lines = _open_web(service, args.host, args.port, fresh_token=False,
                                   platforms=platforms, handler=handler)
    stop = threading.Event()
    _stop_on_signals(stop)
    live = live_config.follow(service, "web", [handler])
    threading.Thread(target=web.run, name="web", daemon=True).start()
    print(*web_lines, sep="\n", flush=True)
    stop.wait()
    web.close()
    live.close()
    return 0


def build_web_app(service: svc.Service, handler: Any = None) -> Any:
    """The web app with the HTTP endpoints of every configured platform (what ``chatops web``
    serves), for tests and benchmarks that drive it in-process."""
    from bot.runner import configured_platforms, create_platforms
    from webserver.app import create_app

    platforms = create_platforms(service, configured_platforms(service.settings))
    return create_app(service, handler, platforms)


# -- the console platform -----------------------------------------------------------------------

def cmd_chat(args: argparse.Namespace) -> int:
    from chatops import wakeup
    from chatops.commands import CommandHandler, Incoming
    from chatops.events import Requester
    from chatops.plain_text import render_delivery, render_response
    from chatops.platform import take_waiting

    service = svc.open_service()
    settings = service.settings
    channel = f"cli-{uuid.uuid4().hex[:12]}"
    user = args.user or getpass.getuser()
    requester = Requester(platform="console", user=user, channel=channel, user_name=user,
                          is_direct=True, is_guest=False)
    listener = wakeup.Listener(settings.run_dir, "outbox")  # before the job can end
    try:
        response = CommandHandler(settings, service.config, service.queue).handle(
            Incoming(requester, args.text))
        for line in render_response(response):
            print(line, flush=True)
        if response.refused or not response.understood:
            return svc.EXIT_FAILED
        if response.job_id is None:
            return 0
        print(f"(job {response.job_id})", file=sys.stderr, flush=True)
        if args.no_wait:
            return 0
        if not service.queue.dispatcher_alive():
            print("(no dispatcher is running: the job waits in the queue until one starts — "
                  "`chatops run` or `chatops dispatcher`)", file=sys.stderr, flush=True)
        deadline = time.time() + args.timeout
        while time.time() < deadline:
            for delivery in take_waiting(service.queue, "console", channel):
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


# -- config, database, jobs ---------------------------------------------------------------------

def cmd_config_check(args: argparse.Namespace) -> int:
    from chatops import config_cli, live_config
    from chatops.job_config import ConfigError, load_config

    path = Path(args.path) if args.path else load_settings().config_path
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(*live_config.error_lines(path, exc.errors), sep="\n", file=sys.stderr)
        return svc.EXIT_FAILED
    for ns in config.namespaces.values():
        flags = " restricted" if ns.restricted else ""
        flags += f" allowed_users={len(ns.allowed_users)}" if ns.allowed_users else ""
        print(f"{ns.name}: {len(ns.jobs)} jobs, {len(ns.commands)} commands{flags}"
              + (f" — {ns.description}" if ns.description else ""))
    print("admins: " + (", ".join(sorted(config.admins)) or "none (nobody may read the logs "
                        "of others' private jobs or cancel them)"))
    print(f"admin channel: {config.admin_channel or 'none (alarms go only to the log)'}")
    print(f"{path}: OK ({len(config.namespaces)} namespaces)")
    if args.show_schedules:
        config_cli.print_schedules(config)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from chatops import migrate

    settings = load_settings()
    queue = svc.open_queue(settings, need_schema=False)
    migrate.upgrade(queue.engine)
    print(f"database {queue.engine.url} is up to date")
    return 0


def _job_line(job) -> str:
    from chatops.texts import clock

    when = clock(job.finished_at or job.started_at or job.start_after)
    return (f"{job.id:>6}  {job.state:<10} {job.job_type:<28} {when:<24} "
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


def cmd_jobs_show(args: argparse.Namespace) -> int:
    service = svc.open_service()
    job = _get_job(service, args.job_id)
    if job is None:
        return svc.EXIT_NOT_FOUND
    for key, value in job._mapping.items():
        print(f"{key:>16}: {value}")
    for sub in service.queue.subscribers_of(job.id):
        print(f"{'subscriber':>16}: {sub.platform} {sub.channel} thread={sub.thread} "
              f"user={sub.user}")
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
    if not job.log_dir:
        print(f"chatops: job {job.id} has no logs yet ({job.state})", file=sys.stderr)
        return svc.EXIT_FAILED
    path = Path(job.log_dir) / ("stderr" if args.stderr else "stdout")
    try:
        with open(path, "rb") as f:
            while chunk := f.read(65536):
                sys.stdout.buffer.write(chunk)
    except OSError as exc:
        print(f"chatops: cannot read {path}: {exc}", file=sys.stderr)
        return svc.EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
