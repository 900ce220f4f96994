"""``chatops telemetry CONFIG`` (run the daemon) and ``chatops telemetry check CONFIG``.

``check`` validates without running: every error with its line (exit 2), else a summary of what
the daemon would do, with warnings for keys not built here and for referenced files that do not
exist on this host (configurations are often checked away from the node; the daemon itself
refuses to start without them).
"""

from __future__ import annotations

import argparse
import sys

from dispatcher.telemetry.config import Config, ConfigError, load_config

USAGE = """usage: chatops telemetry CONFIG          run the telemetry daemon
       chatops telemetry check CONFIG    validate CONFIG without running it

CONFIG is Sonar's daemon ini file (docs/telemetry.md). Exit codes: 0 ok; 2 the configuration
has errors (each printed with its line); 3 another daemon holds the lock, or a directory
cannot be used."""


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]) or not argv:
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "check":
        if argv[1:] in (["-h"], ["--help"]):
            print(USAGE)
            return 0
        if len(argv) == 2:
            return check(argv[1])
        print("chatops telemetry check: name one daemon ini file, as in "
              "`chatops telemetry check /etc/chatops/telemetry.ini`", file=sys.stderr)
        return 2
    if len(argv) == 1:
        from dispatcher.telemetry.daemon import run_daemon

        return run_daemon(argv[0])
    print(USAGE, file=sys.stderr)
    return 2


def summary(config: Config) -> list[str]:
    ops = []
    for op, settings in (("sample", config.sample), ("sysinfo", config.sysinfo),
                         ("job", config.jobs), ("cluster", config.cluster_state)):
        if settings.cadence:
            at_start = " and at start" if getattr(settings, "on_startup", False) else ""
            ops.append(f"{op} every {settings.cadence}{at_start}")
    if config.kafka:
        prefix = f"{config.topic_prefix}." if config.topic_prefix else ""
        sink = (f"Kafka at {config.kafka.broker_address or config.kafka.rest_endpoint}, "
                f"topics {prefix}{config.cluster}.<type>, control messages from "
                f"{prefix}{config.cluster}.control.{config.role}")
    elif config.http:
        sink = f"HTTP POST to {config.http.api_root}/<type>"
    elif config.data_directory:
        sink = f"files under {config.data_directory}"
    else:
        sink = "standard output"
    return [f"cluster {config.cluster}, role {config.role}",
            "runs " + (", ".join(ops) if ops else "nothing (no operation has a cadence)"),
            f"sends to {sink}",
            f"buffers up to {byte_size(config.buffer_size)} in {config.buffer_directory}"]


def byte_size(n: int) -> str:
    """104857600 -> "100 MiB", as an ini file would have said it (100M)."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def check(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.errors)} error(s):", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        for warning in exc.warnings:
            print(f"  warning: {warning}", file=sys.stderr)
        return 2
    for warning in [*config.warnings, *config.missing_files()]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK")
    for line in summary(config):
        print(f"  {line}")
    return 0


def parser_help(sub: argparse._SubParsersAction) -> None:
    """List ``telemetry`` in ``chatops --help`` (its arguments are read by :func:`main`)."""
    sub.add_parser("telemetry", help="the cluster telemetry daemon (Sonar's daemon mode): "
                   "`telemetry CONFIG` or `telemetry check CONFIG`", add_help=False)
