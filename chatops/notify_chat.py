"""`notify me` / `notify stop`: a chat channel (or a console user) opts in to, or out of, the
Slurm job notifications sent with its ``--mail-user``."""

from __future__ import annotations

from sqlalchemy import Engine

from chatops import identities
from chatops.events import Requester
from chatops.schedule_chat import Answer


def notify(engine: Engine, on: bool, who: Requester) -> Answer:
    """Opt this chat in to (or out of) Slurm job notifications."""
    if who.platform == "console":
        return _console(engine, on, who)
    if not who.channel or who.platform in ("web", "github"):
        return Answer("Slurm notifications go to chat channels: send `notify me` from the "
                      "channel that should get them.", understood=False)
    mail_user = f"--mail-user={who.platform}:{who.channel}"
    if on:
        identities.opt_in(engine, who.platform, who.channel, user_id=who.user)
        return Answer(f"This channel now gets Slurm notifications sent with `{mail_user}` "
                      "(with `--mail-type=END,FAIL`, or `ALL`). `notify stop` ends them.",
                      acknowledged=True)
    if identities.opt_out(engine, who.platform, who.channel):
        return Answer(f"This channel no longer gets Slurm notifications (`{mail_user}`).",
                      acknowledged=True)
    return Answer("This channel was not getting Slurm notifications.")


def _console(engine: Engine, on: bool, who: Requester) -> Answer:
    """The console is a channel too: its target is the person (``console:<user>``), and
    their notifications wait for their next session, on the command line or the web. A
    command-line user is also the Slurm account, so Slurm's default mail user (the
    account's name) reaches them once they opted in."""
    where = "the web console" if who.user.startswith("web:") else "the console"
    mail_user = f"--mail-user=console:{who.user}"
    if on:
        account = None if who.user.startswith("web:") else who.user
        identities.opt_in(engine, "console", who.user, user_id=who.user, cluster_user=account)
        also = f" (or Slurm's default for the account {account})" if account else ""
        return Answer(f"You now get Slurm notifications in {where}, sent with `{mail_user}`{also} "
                      "and `--mail-type=END,FAIL` (or `ALL`); they wait for your next session. "
                      "`notify stop` ends them.", acknowledged=True)
    if identities.opt_out(engine, "console", who.user):
        return Answer(f"You no longer get Slurm notifications in {where} (`{mail_user}`).",
                      acknowledged=True)
    return Answer(f"You were not getting Slurm notifications in {where}.")
