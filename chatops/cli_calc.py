"""``chatops audit export`` (the calculations' audit as CSV or JSONL, for the site's records)
and ``chatops import-hpcbot`` (HPC_bot's config.json as job_configs.py)."""

from __future__ import annotations

import argparse
import sys
from csv import Error as csvError
from datetime import UTC, datetime

from chatops import service as svc


def add_parsers(sub: argparse._SubParsersAction, epilog: str) -> None:
    audit = sub.add_parser("audit", help="the audit of calculations and their users",
                           epilog=epilog)
    audit_sub = audit.add_subparsers(metavar="ACTION")
    audit.set_defaults(func=lambda args: _usage(audit))
    export = audit_sub.add_parser("export", help="print the audit since DATE as CSV or JSONL",
                                  epilog=epilog)
    export.add_argument("--since", required=True, type=_date, metavar="DATE",
                        help="YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC)")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv",
                        help="csv (a header line first) or jsonl (one object a line)")
    export.add_argument("--action", help="only this action (submitted, refused, quota, "
                        "approved, blocked, ...: all are listed if you name another)")
    export.set_defaults(func=cmd_audit_export)
    organisations = sub.add_parser("orgs", help="the organisations users name in their "
                                   "profile", epilog=epilog)
    orgs_sub = organisations.add_subparsers(metavar="ACTION")
    organisations.set_defaults(func=lambda args: _usage(organisations))
    load = orgs_sub.add_parser("import", help="replace them with those of a CSV file (HPC_bot's "
                               "columns: label, name, alias, parent)", epilog=epilog)
    load.add_argument("path", help="organizations.csv")
    load.set_defaults(func=cmd_orgs_import)
    hpcbot = sub.add_parser("import-hpcbot", epilog=epilog,
                            help="print HPC_bot's config.json as job_configs.py (runners, "
                            "clusters, quotas, audit channel)")
    hpcbot.add_argument("path", help="HPC_bot's config.json")
    hpcbot.set_defaults(func=cmd_import_hpcbot)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return svc.EXIT_USAGE


def _date(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD or "
                                         "YYYY-MM-DDTHH:MM (UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def cmd_audit_export(args: argparse.Namespace) -> int:
    from chatops.calc import audit
    from chatops.settings import load_settings

    if args.action is not None and args.action not in audit.ACTIONS:
        print(f"chatops: there is no audit action {args.action!r}; the actions are "
              f"{', '.join(audit.ACTIONS)}", file=sys.stderr)
        return svc.EXIT_USAGE
    queue = svc.open_queue(load_settings())
    count = audit.export(audit.rows(queue.engine, args.since, args.action), sys.stdout,
                         args.format)
    print(f"({count} audit rows)", file=sys.stderr)
    return 0


def cmd_import_hpcbot(args: argparse.Namespace) -> int:
    import json

    from chatops.calc.hpcbot import convert

    try:
        with open(args.path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"chatops: cannot read {args.path}: {exc}", file=sys.stderr)
        return svc.EXIT_FAILED
    if not isinstance(config, dict):
        print(f"chatops: {args.path} is not HPC_bot's config (a JSON object)", file=sys.stderr)
        return svc.EXIT_FAILED
    print(convert(config), end="")
    return 0


def cmd_orgs_import(args: argparse.Namespace) -> int:
    from chatops.calc import orgs
    from chatops.settings import load_settings

    try:
        with open(args.path, encoding="utf-8-sig", newline="") as f:
            rows, problems = orgs.read_csv(f)
    except (OSError, UnicodeDecodeError, csvError) as exc:
        print(f"chatops: cannot read {args.path}: {exc}", file=sys.stderr)
        return svc.EXIT_FAILED
    if problems:
        print("\n".join(f"{args.path}: {p}" for p in problems), file=sys.stderr)
        print(f"{args.path}: nothing imported ({len(problems)} problem(s))", file=sys.stderr)
        return svc.EXIT_FAILED
    count = orgs.load(svc.open_queue(load_settings()).engine, rows)
    roots = sum(1 for row in rows if not row["parent"])
    print(f"imported {count} organisations ({roots} at the top)")
    return 0
