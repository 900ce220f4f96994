"""``chatops notifications list|retry|drop``: look at and act on everything queued to be said
(job reports, notices, Slurm notifications: the one outbound table). ``chatops outbound`` is
the same command."""

from __future__ import annotations

import argparse
import sys

from chatops import outbound
from chatops.cli_types import count, row_id
from chatops.texts import clock

# The order `list` counts them in (the usual ones first).
SHOWN = ("pending", "delivered", "dead", "suppressed", "summarised", "dropped", "sending")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("notifications", aliases=["outbound"],
                            help="messages to people (reports, notices, Slurm notifications): "
                            "list, retry dead letters, drop")
    actions = parser.add_subparsers(metavar="ACTION")
    listing = actions.add_parser("list", help="recent messages, newest first, and counts")
    listing.add_argument("--state", choices=outbound.STATES, help="only this state (e.g. dead)")
    listing.add_argument("--limit", type=count, default=50, help="at most this many (50)")
    listing.set_defaults(func=cmd_list)
    retry = actions.add_parser("retry", help="send dead-lettered messages again (a report "
                               "resumes after its parts already sent)")
    retry.add_argument("ids", nargs="*", type=row_id, help="ids (default: every dead one)")
    retry.set_defaults(func=cmd_retry)
    drop = actions.add_parser("drop", help="give up on pending or dead messages")
    drop.add_argument("ids", nargs="*", type=row_id, help="ids to drop")
    drop.add_argument("--all-dead", action="store_true", help="drop every dead one")
    drop.set_defaults(func=cmd_drop)


def _engine():
    from chatops import service as svc

    return svc.open_queue(svc.load_settings()).engine


def cmd_list(args: argparse.Namespace) -> int:
    engine = _engine()
    counts = outbound.counts(engine)
    print("  ".join(f"{state}: {counts.get(state, 0)}" for state in SHOWN))
    on_console = outbound.counts(engine, "console").get("pending", 0)
    if on_console:  # nothing sends these: they stay pending, and the dashboard shows them
        verb = "is" if on_console == 1 else "are"
        print(f"({on_console} of the pending {verb} for console channels, which nothing sends: "
              "a `chatops chat` session or the web console takes its own, and the dashboard's "
              "queue page shows the others)")
    for row in outbound.listing(engine, args.state, args.limit):
        when = clock(row.created_at, date=True)  # UTC, as `chatops jobs list` shows times
        error = f"  ({row.last_error[:100]})" if row.last_error else ""
        job = f"  job {row.job_id}" if row.job_id is not None else ""
        print(f"{row.id:>6}  {row.state:<10} {when}  {row.platform}:{row.channel}  "
              f"attempts {row.attempts}{job}{error}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    count = outbound.set_state(_engine(), args.ids or None, "pending", ("dead",))
    print(f"{count} notification(s) queued again")
    if args.ids and count < len(set(args.ids)):
        print("chatops: not every id named is a dead letter, and only those are sent again "
              "(`chatops notifications list --state dead` lists them)", file=sys.stderr)
    _wake_senders()
    return 0 if count or not args.ids else 1


def cmd_drop(args: argparse.Namespace) -> int:
    if not args.ids and not args.all_dead:
        print("chatops: name the ids to drop, or --all-dead", file=sys.stderr)
        return 2
    ids = None if args.all_dead and not args.ids else args.ids
    states = ("dead",) if args.all_dead else ("pending", "dead")
    count = outbound.set_state(_engine(), ids, "dropped", states)
    print(f"{count} notification(s) dropped")
    if ids and count < len(set(ids)):
        print("chatops: not every id named is pending or dead, and only those can be dropped "
              "(`chatops notifications list` shows each one's state)", file=sys.stderr)
    return 0 if count else 1


def _wake_senders() -> None:
    from chatops import service as svc
    from chatops import wakeup

    wakeup.notify(svc.load_settings().run_dir, "outbox")
