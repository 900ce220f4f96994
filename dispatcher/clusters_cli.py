"""``chatops clusters check``: connect to each cluster of job_configs.py and run ``sinfo``.

``chatops config check`` looks only at files (the key and known_hosts exist and are readable);
this tries what the dispatcher will do: the SSH connection with the cluster's settings (host key
checked strictly) and one Slurm command; on a cluster that runs jobs as the person who asks,
that sudo lets its user run the wrapper. The clusters are tried at once, each within its own
``connect_timeout`` and ``command_timeout``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from chatops.cluster_config import ClusterSpec

if TYPE_CHECKING:  # paramiko is imported only when a check runs: every CLI command parses this
    from dispatcher.ssh import SSHPool

SINFO = ["sinfo", "--summarize"]


def add_parser(sub: argparse._SubParsersAction, epilog: str | None = None) -> None:
    parser = sub.add_parser("clusters", help="the clusters of job_configs.py", epilog=epilog)
    actions = parser.add_subparsers(metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))
    check = actions.add_parser(
        "check", epilog=epilog,
        help="connect to each cluster (or the named ones) and run `sinfo --summarize`; exit 1 "
        "if any fails")
    check.add_argument("names", nargs="*", metavar="NAME", help="only these clusters")
    check.set_defaults(func=cmd_clusters_check)


def _usage(parser: argparse.ArgumentParser) -> int:
    from chatops import service as svc

    parser.print_help(sys.stderr)
    return svc.EXIT_USAGE


def check_cluster(pool: SSHPool, spec: ClusterSpec) -> tuple[bool, list[str]]:
    """(whether it answered, the lines to print about it)."""
    where = f"{spec.user}@{spec.host}:{spec.port}"
    started = time.monotonic()
    try:
        result = pool.connection(spec.name).run(SINFO, spec.command_timeout)
    except TimeoutError as exc:
        return False, [f"{spec.name}: FAILED ({where}): `sinfo` gave no answer: {exc}"]
    except ConnectionError as exc:
        return False, [f"{spec.name}: FAILED ({where}): {exc}"]
    took = (time.monotonic() - started) * 1000
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip() or "nothing").splitlines()
        return False, [f"{spec.name}: FAILED ({where}): connected, but `sinfo` exited "
                       f"{result.returncode}: {said[0] if said else ''}"]
    lines = [f"{spec.name}: OK ({where}): connected and ran `sinfo` in {took:.0f} ms"]
    lines += [f"    {line}" for line in result.stdout.rstrip().splitlines()]
    if spec.submit_as != "requester":
        return True, lines
    rule = sudo_rule(pool, spec)
    if rule is None:
        return False, [f"{spec.name}: FAILED ({where}): connected and ran `sinfo`, but no sudo "
                       f"rule lets {spec.user} run {spec.submit_wrapper} without a password, "
                       "and this cluster runs jobs as the person who asks (submit_as = "
                       "\"requester\"): see DEPLOY.md, *Jobs as the person*"]
    return True, lines + [f"    sudo: {rule}"]


def sudo_rule(pool: SSHPool, spec: ClusterSpec) -> str | None:
    """The sudoers line that lets the cluster's user run the wrapper, as ``sudo -l`` shows it."""
    try:
        listed = pool.connection(spec.name).run(["sudo", "-n", "-l"], spec.command_timeout)
    except (ConnectionError, TimeoutError):
        return None
    for line in listed.stdout.splitlines():
        if "NOPASSWD" in line and spec.submit_wrapper in line.split():
            return line.strip()
    return None


def cmd_clusters_check(args: argparse.Namespace) -> int:
    from chatops import service as svc
    from chatops.config_loader import ConfigError, load_config
    from chatops.live_config import error_lines

    settings = svc.load_settings()
    try:
        config = load_config(settings.config_path)
    except ConfigError as exc:
        print(*error_lines(settings.config_path, exc.errors), sep="\n", file=sys.stderr)
        return svc.EXIT_FAILED
    unknown = [name for name in args.names if name not in config.clusters]
    if unknown:
        print(f"chatops: no cluster named {', '.join(unknown)} in {settings.config_path} "
              f"(it has: {', '.join(config.clusters) or 'none'})", file=sys.stderr)
        return svc.EXIT_USAGE
    specs = [config.clusters[name] for name in args.names or config.clusters]
    if not specs:
        print(f"{settings.config_path} names no clusters: nothing to check.")
        return 0
    from dispatcher.ssh import SSHPool

    # Each outcome is printed below; the pool's own warnings would say it twice.
    logging.getLogger("chatops.ssh").setLevel(logging.ERROR)
    pool = SSHPool(config.clusters, settings.environ)
    try:
        with ThreadPoolExecutor(max_workers=min(8, len(specs))) as workers:
            results = list(workers.map(lambda spec: check_cluster(pool, spec), specs))
    finally:
        pool.close()
    for ok, lines in results:
        print(*lines, sep="\n", file=sys.stdout if ok else sys.stderr)
    failed = sum(not ok for ok, _ in results)
    return svc.EXIT_FAILED if failed else 0
