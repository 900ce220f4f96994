"""``chatops config check --show-schedules`` and ``chatops config reload``."""

from __future__ import annotations

import argparse
import socket
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatops.job_config import Config


def print_schedules(config: Config, now: float | None = None) -> None:
    """Each schedule with its next three run times, in its time zone."""
    now = time.time() if now is None else now
    schedules = config.schedules()
    print(f"schedules: {len(schedules)}" if schedules else "schedules: none")
    for spec in schedules:
        args = "".join(f" {k}={v}" for k, v in spec.args)
        print(f"  {spec.key}: {spec.job_type}{args}, {spec.trigger.text}, reports to "
              f"{spec.report_to}, misfire: {spec.misfire}")
        print("    next: " + ", ".join(spec.trigger.local(t)
                                       for t in spec.trigger.next_times(now, 3)))


def print_monitors(config: Config) -> None:
    """Each cluster monitor: cadence, targets, when it says "offline"."""
    print(f"monitors: {len(config.monitors)}" if config.monitors else "monitors: none")
    for spec in config.monitors.values():
        print(f"  {spec.cluster}: every {spec.cadence_text} (timeout {spec.timeout:g} s), "
              f"{spec.post}, offline after {spec.offline_after} failed polls, times in "
              f"{spec.timezone}; to {', '.join(spec.targets)}")


def add_reload_parser(config_sub: argparse._SubParsersAction) -> None:
    reload = config_sub.add_parser(
        "reload", help="check job_configs.py, then have every process on this host apply it "
        "now (they also notice edits themselves, and on SIGHUP)")
    reload.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the processes to apply it (10)")
    reload.set_defaults(func=cmd_config_reload)


def cmd_config_reload(args: argparse.Namespace) -> int:
    from chatops import live_config, wakeup
    from chatops import service as svc
    from chatops.config_loader import ConfigError, load_config
    from chatops.settings import load_settings
    from chatops.texts import plural

    settings = load_settings()
    path = settings.config_path
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(*live_config.error_lines(path, exc.errors), sep="\n", file=sys.stderr)
        print("Nothing was reloaded: the running processes keep the config they have.",
              file=sys.stderr)
        return svc.EXIT_FAILED
    digest = live_config.file_hash(path)
    queue = svc.open_queue(settings)
    wakeup.notify(settings.run_dir, live_config.TOPIC)
    deadline = time.time() + args.timeout
    here = socket.gethostname()
    while True:
        running = live_config.running_processes(queue)
        behind = [p for p in running if p.host == here and p.config_hash != digest]
        if not behind or time.time() >= deadline:
            break
        time.sleep(0.1)
    print(f"{path}: OK ({plural(len(config.namespaces), 'namespace')}, "
          f"{plural(len(config.schedules()), 'schedule')}), version {digest[:12]}")
    if not running:
        print("No process of the service is running; the next one to start reads it.")
    for p in running:
        if p.config_hash == digest:
            state = "runs it"
        elif p.host != here:
            state = (f"runs {p.config_hash[:12]} (another host: it applies the edit when its "
                     "own copy of the file changes, or on SIGHUP)")
        else:
            state = f"still runs {p.config_hash[:12]}: see its log"
        print(f"  {p.role} on {p.host} (pid {p.pid}): {state}")
    return svc.EXIT_FAILED if behind else 0

