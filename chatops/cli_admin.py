"""``chatops config check``, ``chatops db upgrade|backup`` and ``chatops prune``: what an admin
runs to install, upgrade, back up and keep the service small."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from chatops import privileges
from chatops import service as svc
from chatops.params import parse_duration
from chatops.settings import load_settings
from chatops.texts import clock, plural, size


def add_parsers(sub: argparse._SubParsersAction, epilog: str) -> None:
    config = sub.add_parser("config", help="check job_configs.py", epilog=epilog)
    config_sub = config.add_subparsers(metavar="ACTION")
    config.set_defaults(func=lambda args: _usage(config))
    check = config_sub.add_parser("check", help="validate a config; print a line per "
                                  "namespace, or every error (exit 1)", epilog=epilog)
    check.add_argument("path", nargs="?", help="the file (default: CHATOPS_CONFIG or "
                       "job_configs.py)")
    check.add_argument("--show-schedules", action="store_true",
                       help="print each schedule's next three run times")
    check.set_defaults(func=cmd_config_check)
    from chatops import config_cli

    config_cli.add_reload_parser(config_sub)

    db = sub.add_parser("db", help="the queue database", epilog=epilog)
    db_sub = db.add_subparsers(metavar="ACTION")
    db.set_defaults(func=lambda args: _usage(db))
    upgrade = db_sub.add_parser("upgrade", help="create the database or apply new migrations",
                                epilog=epilog)
    upgrade.set_defaults(func=cmd_db_upgrade)
    check = db_sub.add_parser("check", help="is the database sound, at the newest schema and "
                              "writable? (SQLite: integrity_check; exit 3 when not)",
                              epilog=epilog)
    check.set_defaults(func=cmd_db_check)
    backup = db_sub.add_parser("backup", help="copy the SQLite database while the service "
                               "runs (PostgreSQL: use pg_dump)", epilog=epilog)
    backup.add_argument("file", help="where to write the copy (a new file)")
    backup.set_defaults(func=cmd_db_backup)

    prune = sub.add_parser(
        "prune", epilog=epilog,
        help="remove the log files of old jobs and the delivered messages; job rows stay")
    prune.add_argument("--older-than", required=True, metavar="AGE", type=_age,
                       help="what ended (or was sent) longer ago than this goes, e.g. 90d, "
                       "12w, 36h")
    prune.add_argument("--dry-run", action="store_true", help="only say what would go")
    prune.set_defaults(func=cmd_prune)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return svc.EXIT_USAGE


def _age(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age: use e.g. 90d, 12w or 36h")
    return seconds


def cmd_config_check(args: argparse.Namespace) -> int:
    from chatops import config_cli, live_config
    from chatops.config_loader import ConfigError, load_config
    from chatops.notify.check import check_setup, check_templates
    from chatops.notify.render import templates_dir

    settings = load_settings()
    path = Path(args.path) if args.path else settings.config_path
    try:
        config = load_config(path)
    except ConfigError as exc:  # and what the environment gets wrong, all at once
        print(*live_config.error_lines(path, exc.errors),
              *check_templates(templates_dir(settings.environ)), sep="\n", file=sys.stderr)
        return svc.EXIT_FAILED
    errors, warnings = check_setup(config.notifications, settings.environ)
    for error in errors:  # reported with the cluster files' below, all at once
        print(f"{path}: {error}", file=sys.stderr)
    for warning in [*config.warnings, *warnings]:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    for ns in config.namespaces.values():
        flags = " restricted" if ns.restricted else ""
        flags += f" allowed_users={len(ns.allowed_users)}" if ns.allowed_users else ""
        print(f"{ns.name}: {plural(len(ns.jobs), 'job')}, "
              f"{plural(len(ns.commands), 'command')}{flags}"
              + (f" — {ns.description}" if ns.description else ""))
    for runner in config.runners.values():
        print(f"runner {runner.name} on {runner.cluster}: {runner.program.split()[0]} for "
              f"{', '.join(runner.extensions) or 'files named in the caption'}"
              + (f" — {runner.description}" if runner.description else ""))
    if config.runners:
        from chatops.calc.registration import summary

        print(f"calculations: new users register {summary(config.calc.register_from)}")
    print("admins: " + (", ".join(sorted(config.admins)) or "none (nobody may read the logs "
                        "of others' private jobs or cancel them)"))
    print(f"admin channel: {config.admin_channel or 'none (alarms go only to the log)'}")
    config_cli.print_monitors(config)
    problems = cluster_file_problems(config.clusters, settings)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    account = privileges.job_account(settings)
    if account is None:
        print(f"WARNING: {privileges.without_job_account()}", file=sys.stderr)
    else:
        print(f"local jobs run as: {account.name} (CHATOPS_JOB_USER)")
    if problems:
        print(f"{path}: not OK: {plural(len(problems), 'cluster file')} cannot be used "
              "(`chatops clusters check` then tries the connections)", file=sys.stderr)
    if errors:
        print(f"{path}: not OK: {plural(len(errors), 'notification setting')} cannot be used",
              file=sys.stderr)
    if problems or errors:
        return svc.EXIT_FAILED
    print(f"{path}: OK ({plural(len(config.namespaces), 'namespace')})")
    if args.show_schedules:
        config_cli.print_schedules(config)
    return 0


def cluster_file_problems(clusters, settings) -> list[str]:
    """Each cluster's key file and known_hosts must exist and be readable by the account the
    service runs as (CHATOPS_SERVICE_USER, else whoever runs this check)."""
    name = settings.environ.get("CHATOPS_SERVICE_USER", "").strip()
    account = privileges.Account.named(name, "CHATOPS_SERVICE_USER") if name else None
    who = f"{name} (CHATOPS_SERVICE_USER)" if account else f"this account (uid {os.geteuid()})"
    problems = []
    for cluster in clusters.values():
        files = [("known_hosts", cluster.known_hosts)]
        if cluster.key_file:
            files.append(("key_file", cluster.key_file))
        for key, value in files:
            where = f"cluster {cluster.name!r}: {key} {value}"
            file = Path(value).expanduser()
            if not file.is_file():
                problems.append(f"{where} does not exist" if not file.exists()
                                else f"{where} is not a file")
            elif account is not None and account.uid != 0:
                blocked = account.unreachable(file.absolute(), os.R_OK)
                if blocked == file.absolute():
                    mode = file.stat().st_mode & 0o777
                    problems.append(f"{where} is not readable by {who} (mode {mode:o})")
                elif blocked is not None:
                    problems.append(f"{where} is not readable by {who}: it cannot pass "
                                    f"{blocked}")
            elif account is None and not os.access(file, os.R_OK):
                problems.append(f"{where} is not readable by {who}")
    return problems


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from chatops import migrate

    queue = svc.open_queue(load_settings(), need_schema=False)
    url = repr(queue.engine.url)  # the password hidden
    before = migrate.current_revision(queue.engine)
    migrate.upgrade(queue.engine)
    after = migrate.current_revision(queue.engine)
    if before is None:
        print(f"created the database {url} (schema {after})")
    elif before != after:
        print(f"upgraded the database {url} from schema {before} to {after}")
    else:
        print(f"the database {url} is up to date (schema {after})")
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    from chatops.db_check import check

    settings = load_settings()
    lines, ok = check(settings.database_url)
    print(*lines, sep="\n")
    return 0 if ok else svc.EXIT_ENVIRONMENT


def cmd_db_backup(args: argparse.Namespace) -> int:
    """SQLite's online backup: a consistent copy while the service goes on writing."""
    settings = load_settings()
    queue = svc.open_queue(settings)
    if not settings.is_sqlite:
        print("chatops: the database is PostgreSQL: back it up with pg_dump (see DEPLOY.md, "
              "section Backups)", file=sys.stderr)
        return svc.EXIT_FAILED
    target = Path(args.file)
    if target.exists():
        print(f"chatops: {target} exists already: name a new file", file=sys.stderr)
        return svc.EXIT_FAILED
    partial = target.with_name(f".{target.name}.partial")
    try:
        source = sqlite3.connect(queue.engine.url.database, timeout=30)
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        print(f"chatops: cannot write the backup to {target}: {exc}", file=sys.stderr)
        return svc.EXIT_FAILED
    print(f"backed up {queue.engine.url.database} to {target} ({size(target.stat().st_size)})")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from chatops.prune import prune

    settings = load_settings()
    queue = svc.open_queue(settings)
    done = prune(settings, queue, args.older_than, dry_run=args.dry_run)
    verb = "Would remove" if args.dry_run else "Removed"
    print(f"{verb} the logs of {plural(done.jobs, 'job')} that ended before "
          f"{clock(done.ended_before, date=True)} ({size(done.bytes)}) and "
          f"{plural(done.messages, 'delivered message')}. Job rows are kept"
          + ("." if args.dry_run else ": their pages and `logs` say the logs were pruned."))
    if done.kept:
        print(f"Kept the result files of {plural(done.kept, 'calculation')}: a download link "
              "to them still works.")
    return 0
