"""The ``chatops`` command: run the service, talk to it, inspect jobs, check the config."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from importlib import metadata
from types import ModuleType
from typing import Any

from chatops import privileges
from chatops.settings import SetupError, load_settings, read_env_file

log = logging.getLogger("chatops.platforms")


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
understood); 2 usage; 3 setup problem (a setting missing or wrong, no database, broken config);
4 no such job."""


def version() -> str:
    try:
        return metadata.version("hpc-chatops")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    privileges.harden_process()  # no reading of our environment (secrets) through /proc
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
        if args.env_file:  # as systemd's EnvironmentFile=: the file wins
            os.environ.update(read_env_file(args.env_file))
        return args.func(args) or 0
    except SetupError as exc:
        print(f"chatops: {exc}", file=sys.stderr)
        return svc.EXIT_ENVIRONMENT
    except BrokenPipeError:  # `chatops jobs list | head`: the reader has all it wanted
        # Python would complain again flushing stdout at exit: point it at /dev/null
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a damaged, full or read-only database: say so, not a traceback
        from chatops import storage

        found = storage.fault(exc)
        if found is None:
            raise
        print(f"chatops: {storage.setup_message(found, load_settings().database_url)}",
              file=sys.stderr)
        return svc.EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    # not for `chatops telemetry`: see _lazy_module
    from chatops import cli_admin, cli_calc, cli_jobs

    parser = argparse.ArgumentParser(
        prog="chatops", description="Chat-ops for HPC clusters: chat commands become jobs.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"chatops {version()}")
    parser.add_argument("--env-file", metavar="FILE",
                        help="read settings from FILE first, as the systemd units do (e.g. "
                        "/etc/chatops/chatops.env)")
    sub = parser.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", help="all in one process: web server, dispatcher and every "
                         "configured chat platform", epilog=EPILOG)
    run.add_argument("--host", default="127.0.0.1", help="web server address (127.0.0.1)")
    run.add_argument("--port", type=int, default=8080, help="web server port (8080)")
    run.set_defaults(func=cmd_run)

    web = sub.add_parser("web", help="the web server: dashboard, chat console, GitHub webhooks, "
                         "/metrics, /healthz", epilog=EPILOG)
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    web.add_argument("--port", type=int, default=8080, help="port (8080)")
    web.set_defaults(func=cmd_web)

    dispatcher = sub.add_parser("dispatcher", help="run queued jobs and report their results",
                                epilog=EPILOG)
    dispatcher.set_defaults(func=cmd_dispatcher)

    bot = sub.add_parser("bot", help="receive commands from one chat platform and deliver "
                         "its reports", epilog=EPILOG)
    bot.add_argument("platform", help="slack, telegram, discord, matrix or console")
    bot.add_argument("--register", action="store_true",
                     help="register the platform's slash commands (Discord) and exit")
    bot.set_defaults(func=cmd_bot)

    cli_jobs.add_parsers(sub, EPILOG)
    cli_admin.add_parsers(sub, EPILOG)
    cli_calc.add_parsers(sub, EPILOG)

    from chatops import cli_outbound
    from dispatcher import clusters_cli
    from dispatcher.telemetry.cli import parser_help as telemetry_help

    clusters_cli.add_parser(sub, EPILOG)
    cli_outbound.add_parser(sub)
    telemetry_help(sub)
    return parser


# -- running the service ------------------------------------------------------------------------

def _stop_on_signals(stop: threading.Event, on_stop=lambda: None) -> None:
    def handler(signum, frame):
        stop.set()
        on_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _check_job_host(settings: svc.Settings) -> None:
    """What a process that runs jobs needs: its folders writable, the job scripts there. (With
    a job account, CHATOPS_WRITEABLE_DIR is that account's: the dispatcher checks it.)"""
    job_account = bool(settings.environ.get("CHATOPS_JOB_USER", "").strip())
    svc.ensure_dirs(settings, *(name for name in svc.FOLDERS
                                if not (job_account and name == "CHATOPS_WRITEABLE_DIR")))
    if not settings.workspace_dir.is_dir():
        raise svc.SetupError(f"CHATOPS_WORKSPACE_DIR ({settings.workspace_dir}) is not a "
                             "folder: it holds the job scripts, one folder per namespace")


def cmd_dispatcher(args: argparse.Namespace) -> int:
    from chatops import live_config
    from dispatcher.loop import Dispatcher

    service = svc.open_service()
    svc.setup_logging(service.settings)
    _check_job_host(service.settings)
    with alarms.startup(service, "chatops dispatcher"):
        dispatcher = Dispatcher(service.settings, service.config, service.queue)
        close_senders = _outbound_senders(service)
    _stop_on_signals(threading.Event(), dispatcher.stop)
    live = live_config.follow(service, "dispatcher", (), dispatcher.reconfigure)
    dispatcher.run()
    live.close()
    close_senders()
    return 0


def _outbound_senders(service: svc.Service) -> Callable[[], None]:
    """Start the senders of the platforms nobody writes to us on (mail, Teams), beside the
    dispatcher; returns what stops them."""
    from bot.runner import outbound_only, start_senders

    platforms = outbound_only(service)
    stop = threading.Event()
    threads = start_senders(service, platforms, stop)

    def close() -> None:
        stop.set()
        for thread in threads:
            thread.join(10)
        _close(*platforms)

    return close


def cmd_bot(args: argparse.Namespace) -> int:
    from bot.registry import platform_class
    from bot.runner import run_platforms
    from chatops import live_config
    from chatops.commands import CommandHandler

    service = svc.open_service()
    svc.setup_logging(service.settings)
    if args.register:
        platform = _checked(platform_class(args.platform).create(service))
        try:
            names = platform.register_commands()
        finally:
            platform.close()
        if not names:
            print(f"chatops: {args.platform} has no commands to register", file=sys.stderr)
            return svc.EXIT_USAGE
        print("registered: " + ", ".join(f"/{name}" for name in names))
        return 0
    svc.ensure_dirs(service.settings, "CHATOPS_RUN_DIR")
    with alarms.startup(service, f"chatops bot {args.platform}"):
        platform = _checked(platform_class(args.platform).create(service))
    stop = threading.Event()
    _stop_on_signals(stop)
    handler = CommandHandler(service.settings, service.config, service.queue)
    live = live_config.follow(service, f"bot {args.platform}", [handler])
    run_platforms(service, [platform], stop, handler)
    live.close()
    return 0


def _checked(platform):
    """The platform, once it has confirmed that its credentials work."""
    try:
        platform.check()
    except svc.SetupError:
        _close(platform)
        raise
    return platform


def _close(*platforms) -> None:
    """Close platforms that will not serve (best effort: the process is stopping anyway)."""
    for platform in platforms:
        try:
            platform.close()
        except Exception:
            log.debug("closing %s failed", platform.name, exc_info=True)


def _start_platforms(service: svc.Service, check: bool) -> list:
    """The configured platforms (their credentials checked when they will serve); a warning
    for each platform left out because only some of its settings are set."""
    from bot.runner import configured_platforms, create_platforms, not_started

    platforms = create_platforms(service, configured_platforms(service.settings))
    try:
        for platform in platforms if check else ():
            platform.check()
    except svc.SetupError:
        _close(*platforms)
        raise
    for line in not_started(service.settings):
        log.warning("%s", line)
    return platforms


def cmd_run(args: argparse.Namespace) -> int:
    # Started as root with CHATOPS_SERVICE_USER: the web server and bots run in a child that
    # has dropped to that account; this process keeps only the dispatcher, which needs root to
    # run jobs as CHATOPS_JOB_USER and stop them.
    part = privileges.fork_service_part(load_settings(), lambda: _run(args, dispatcher=False))
    return _run(args, web=part is None, part=part)


def _run(args: argparse.Namespace, web: bool = True, dispatcher: bool = True,
         part: privileges.ServicePart | None = None) -> int:
    from bot.runner import run_platforms
    from chatops import live_config
    from chatops.commands import CommandHandler
    from dispatcher.loop import Dispatcher

    service = svc.open_service()
    svc.setup_logging(service.settings)
    if dispatcher:
        _check_job_host(service.settings)
    else:  # the web server and bots, as the service account
        svc.ensure_dirs(service.settings, "CHATOPS_RUN_DIR")
    stop = threading.Event()
    loop, handlers = None, []
    with alarms.startup(service, "chatops run" if web and dispatcher else
                        "chatops run (dispatcher)" if dispatcher else "chatops run (web, bots)"):
        if dispatcher:
            loop = Dispatcher(service.settings, service.config, service.queue)
            close_senders = _outbound_senders(service)
        _stop_on_signals(stop, loop.stop if loop else lambda: None)
        if web:
            if dispatcher:
                privileges.warn_if_serving_as_root()
            platforms = _start_platforms(service, check=True)
            handlers = [CommandHandler(service.settings, service.config, service.queue)]
            server, web_lines = _open_web(service, args.host, args.port, fresh_token=True,
                                          platforms=platforms, handler=handlers[0])
    live = live_config.follow(service, "run", handlers, *([loop.reconfigure] if loop else []))
    if web:
        threads = [threading.Thread(target=run_platforms, name="platforms", daemon=True,
                                    args=(service, platforms, stop, handlers[0])),
                   threading.Thread(target=server.run, name="web", daemon=True)]
        for thread in threads:
            thread.start()
        print(f"chatops is running: database {service.queue.engine.url}, "
              f"platforms {', '.join(p.name for p in platforms)}.", *web_lines,
              "In another terminal try: chatops chat \"example say hello Bob\"", sep="\n",
              flush=True)
    if part is not None:
        part.watch(loop.stop)  # the web server and bots died: stop, so the service restarts
    if loop is not None:
        loop.run()
        close_senders()
    else:
        stop.wait()
    stop.set()
    if web:
        server.close()
    live.close()
    if part is not None:
        part.stop()
    return 0


def _open_web(service: svc.Service, host: str, port: int, fresh_token: bool,
              platforms: list, handler: Any) -> tuple:
    from webserver.app import open_web

    try:
        return open_web(service, host, port, fresh_token=fresh_token, platforms=platforms,
                        handler=handler)
    except OSError as exc:
        raise svc.SetupError(f"the web server cannot listen on {host}:{port}: {exc.strerror}; "
                             "choose another with --port") from None
    except ValueError:  # waitress: a host name that does not resolve
        raise svc.SetupError(f"the web server cannot listen on {host}:{port}: no such address; "
                             "give --host an address of this machine, e.g. 127.0.0.1") from None


def cmd_web(args: argparse.Namespace) -> int:
    from chatops import live_config
    from chatops.commands import CommandHandler

    service = svc.open_service()
    svc.setup_logging(service.settings)
    with alarms.startup(service, "chatops web"):
        platforms = _start_platforms(service, check=False)  # only their HTTP endpoints
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


if __name__ == "__main__":
    sys.exit(main())
