"""What people say about calculations, and what admins say about people.

Users: ``quota``, ``calcs``, ``calc <id>``. Admins (``admins`` in job_configs.py): ``approve
<user>``, ``block <user> [--cancel] [reason]``, ``unblock <user>``, ``limit <user> <n>``,
``users [pending|blocked|text]``, ``user <user>``. A user is named as ``platform:id``, as
``@name`` (their name on the platform the admin writes from) or by a text that matches exactly
one user. Every change is audited.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from chatops import identities, wakeup
from chatops.calc import audit, links, orgs, store
from chatops.calc.submit import refuse_registration
from chatops.db import identities as identity_rows
from chatops.db import reading
from chatops.events import Requester
from chatops.job_config import Config
from chatops.queue import Queue
from chatops.settings import Settings
from chatops.texts import clock, plural
from chatops.user_ids import user_id_problem

ADMIN_WORDS = ("approve", "block", "unblock", "limit", "users", "user", "bind")
_CLUSTER_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
USER_WORDS = ("quota", "calcs", "calc", "profile", "link", "unlink")
WORDS = ADMIN_WORDS + USER_WORDS


@dataclass(frozen=True)
class Answer:
    text: str
    refused: bool = False
    understood: bool = True
    acknowledged: bool = False


USAGE = {
    "approve": "`approve <user>`", "unblock": "`unblock <user>`", "user": "`user <user>`",
    "block": "`block <user> [--cancel] [reason]`", "limit": "`limit <user> <calculations>`",
    "calc": "`calc <calculation id>`",
    "profile": "`profile <first name> <last name> <organisation>`",
    "bind": "`bind <user> <cluster user>` (or `bind <user> -` to undo)",
}


class CalcAdmin:
    def __init__(self, settings: Settings, config: Config, queue: Queue,
                 cancel: Callable[[int, Requester], str]):
        self.settings = settings
        self.config = config
        self.queue = queue
        self.engine = queue.engine
        self.cancel = cancel  # the handler's `cancel <job id>`: its answer

    def handle(self, who: Requester, words: list[str], now: float | None = None) -> Answer:
        verb, rest = words[0].lower(), words[1:]
        now = time.time() if now is None else now
        if verb == "quota" and not rest:
            return Answer(self._quota_text(who.qualified_user, now, "You have"))
        if verb == "calcs" and not rest:
            return Answer(self._calcs(who.qualified_user, "You have run no calculations yet."))
        if verb == "calc":
            if len(rest) != 1 or not rest[0].lstrip("#").isdigit():
                return Answer(f"Use {USAGE['calc']}.", understood=False)
            return self._calc(int(rest[0].lstrip("#")), who)
        if verb == "profile":
            return self._profile(who, rest, now)
        if verb in ("link", "unlink"):
            return self._link(who, verb, rest, now)
        if verb in USER_WORDS:
            return Answer(f"`{verb}` takes nothing more.", understood=False)
        if not self.config.is_admin(who.qualified_user):
            return Answer(f"Only admins may use `{verb}`; you are {who.qualified_user}.",
                          refused=True)
        if verb == "users":
            return self._users(" ".join(rest), now)
        if not rest:
            return Answer(f"Use {USAGE[verb]}.", understood=False)
        person, problem = self.resolve(rest[0], who.platform)
        if problem:
            return Answer(problem, understood=False)
        return getattr(self, f"_{verb}")(person, rest[1:], who, now)

    # -- naming people ----------------------------------------------------------------------

    def resolve(self, text: str, platform: str) -> tuple[str, str | None]:
        """``platform:id``, ``@name`` on ``platform``, or a text matching one known user."""
        if user_id_problem(text) is None:
            return text, None
        with reading(self.engine) as conn:
            if text.startswith("@"):
                found = [f"{r.platform}:{r.user_id}" for r in conn.execute(
                    select(identity_rows).where(identity_rows.c.platform == platform,
                                                func.lower(identity_rows.c.display_name)
                                                == text[1:].lower()))]
            else:
                found = [r.person for r in store.users(self.engine, text)]
        if len(found) == 1:
            return found[0], None
        if not found:
            return "", (f"Nobody is known as `{text}`. Name them as platform:id (for example "
                        "telegram:123456789); `users` lists the users.")
        return "", (f"`{text}` matches {len(found)} people: {', '.join(sorted(found))}. Name "
                    "one as platform:id.")

    def _label(self, person: str) -> str:
        row = store.user(self.engine, person)
        return f"{person} ({row.display_name})" if row and row.display_name else person

    def _change(self, who: Requester, person: str, action: str, text: str, now: float,
                **values: object) -> None:
        store.register(self.engine, person, None, now)
        row = store.effective_user(self.engine, person)  # a linked person's own row
        store.set_user(self.engine, row.person if row else person, now, **values)
        audit.record(self.queue, self.config.audit_channel, action,
                     f"{who.qualified_user} {text}", actor=who.qualified_user, subject=person,
                     now=now)

    # -- admins -----------------------------------------------------------------------------

    def _approve(self, person: str, rest: list[str], who: Requester, now: float) -> Answer:
        self._change(who, person, "approved", f"approved {person}", now, approved=True,
                     approved_by=who.qualified_user)
        return Answer(f"Approved {self._label(person)}: "
                      f"{self._quota_text(person, now, 'they have')}", acknowledged=True)

    def _block(self, person: str, rest: list[str], who: Requester, now: float) -> Answer:
        cancel = "--cancel" in rest
        reason = " ".join(w for w in rest if w != "--cancel")
        self._change(who, person, "blocked", f"blocked {person}"
                     + (f" ({reason})" if reason else "") + (" and cancelled their calculations"
                                                             if cancel else ""),
                     now, blocked=True, block_reason=reason or None)
        text = f"Blocked {self._label(person)}" + (f" ({reason})" if reason else "") + "."
        running = store.open_calculations(self.engine, person)
        if cancel:
            for job_id in running:
                self.cancel(job_id, who)
            if running:
                text += (f" Cancelling their {plural(len(running), 'calculation')}: "
                         f"{', '.join(map(str, running))}.")
        elif running:
            text += (f" Their {plural(len(running), 'calculation')} in progress "
                     f"({', '.join(map(str, running))}) go on; `block {person} --cancel` "
                     "stops them.")
        return Answer(text, acknowledged=True)

    def _unblock(self, person: str, rest: list[str], who: Requester, now: float) -> Answer:
        self._change(who, person, "unblocked", f"unblocked {person}", now, blocked=False,
                     block_reason=None)
        return Answer(f"Unblocked {self._label(person)}.", acknowledged=True)

    def _limit(self, person: str, rest: list[str], who: Requester, now: float) -> Answer:
        if len(rest) != 1 or not rest[0].isdigit():
            return Answer(f"Use {USAGE['limit']}, with a whole number.", understood=False)
        limit = int(rest[0])
        self._change(who, person, "limit", f"set the quota of {person} to {limit}", now,
                     quota=limit)
        return Answer(f"{self._label(person)}: {self._quota_text(person, now, 'they have')}",
                      acknowledged=True)

    def _bind(self, person: str, rest: list[str], who: Requester, now: float) -> Answer:
        """Tie a person to their cluster account: Slurm's notifications for it reach them."""
        if len(rest) != 1 or not (rest[0] == "-" or _CLUSTER_USER.fullmatch(rest[0])):
            return Answer(f"Use {USAGE['bind']}, with the account's login name.",
                          understood=False)
        account = None if rest[0] == "-" else rest[0]
        platform, _, user_id = person.partition(":")
        identities.record(self.engine, platform, user_id)
        identities.bind_cluster_user(self.engine, platform, user_id, account, now)
        text = (f"bound {person} to cluster user {account}" if account
                else f"unbound {person} from their cluster user")
        audit.record(self.queue, self.config.audit_channel, "bind", f"{who.qualified_user} {text}",
                     actor=who.qualified_user, subject=person, now=now)
        return Answer(f"{self._label(person)} is now cluster user {account}: Slurm's "
                      "notifications for that account reach them." if account else
                      f"{self._label(person)} has no cluster user now.", acknowledged=True)

    def _users(self, which: str, now: float) -> Answer:
        rows = store.users(self.engine, which)
        if not rows:
            return Answer("No users" + (f" match `{which}`." if which else " yet."))
        lines = []
        for row in rows:
            quota = store.quota(self.engine, self.config.calc, row.person, now)
            state = ("blocked" + (f" ({row.block_reason})" if row.block_reason else "")
                     if row.blocked else "approved" if row.approved else "pending")
            name = f" {row.display_name}" if row.display_name else ""
            lines.append(f"• {row.person}{name}: {state}, {quota.used} of {quota.limit} used")
        return Answer("\n".join(lines))

    def _user(self, person: str, rest: list[str], who: Requester, now: float) -> Answer:
        row = store.user(self.engine, person)
        if row is None:
            return Answer(f"{person} has not used calculations.")
        state = ("blocked" + (f" ({row.block_reason})" if row.block_reason else "")
                 if row.blocked else f"approved by {row.approved_by}" if row.approved
                 else "not approved")
        platform, _, user_id = person.partition(":")
        bound = identities.lookup(self.engine, platform, user_id)
        lines = [f"{self._label(person)}: {state}, a user since {clock(row.created_at, True)}."
                 + (f" Profile: {row.profile}." if row.profile else "")
                 + (f" Cluster user: {bound.cluster_user}." if bound and bound.cluster_user
                    else ""),
                 self._quota_text(person, now, "They have"),
                 self._calcs(person, "No calculations yet.")]
        return Answer("\n".join(lines))

    # -- users ------------------------------------------------------------------------------

    def _link(self, who: Requester, verb: str, rest: list[str], now: float) -> Answer:
        """``link``: a code; ``link <code>`` from another platform: both are one person."""
        me = who.qualified_user
        if verb == "unlink":
            if rest:
                return Answer("`unlink` takes nothing more.", understood=False)
            if not store.unlink(self.engine, me, now):
                return Answer("This account is not linked to another.")
            audit.record(self.queue, self.config.audit_channel, "unlinked",
                         f"{me} unlinked itself", actor=me, subject=me, now=now)
            return Answer("This account is on its own again: its own quota, profile and "
                          "calculations.", acknowledged=True)
        if not rest:
            code = store.new_link_code(self.engine, me, now)
            return Answer(f"Send `link {code}` to me from your other chat account within 10 "
                          "minutes: both become one person, with one quota, profile and list "
                          "of calculations.")
        if len(rest) != 1:
            return Answer("Use `link` for a code, then `link <code>` from the other account.",
                          understood=False)
        owner = store.link_code_owner(self.engine, rest[0], now)
        if owner is not None and store.user(self.engine, owner) is None:
            refused = self._new_user_refusal(who)  # neither account is a user yet
            if refused:
                return refused
        target = store.redeem_link_code(self.engine, rest[0], me, who.user_name, now)
        if target is None:
            return Answer("That code is unknown, used or older than 10 minutes (or yours): send "
                          "`link` from the other account for a new one.", refused=True)
        audit.record(self.queue, self.config.audit_channel, "linked",
                     f"{me} linked itself to {target}", actor=me, subject=target, now=now)
        return Answer(f"This account and {target} are one person now: "
                      f"{self._quota_text(me, now, 'you have')}", acknowledged=True)

    def _profile(self, who: Requester, rest: list[str], now: float) -> Answer:
        person = who.qualified_user
        if not rest:
            row = store.effective_user(self.engine, person)
            shown = row.profile if row is not None and row.profile else "not set"
            return Answer(f"Your profile: {shown}. {USAGE['profile']} sets it.")
        if len(rest) < 3:
            return Answer(f"Use {USAGE['profile']}.", understood=False)
        refused = self._new_user_refusal(who)
        if refused:
            return refused
        organisation = " ".join(rest[2:])
        found, loaded = orgs.match(self.engine, organisation)
        if loaded and len(found) != 1:
            what = ("matches no organisation" if not found else
                    f"matches {len(found)}: {', '.join(sorted(o.label for o in found))}")
            return Answer(f"`{organisation}` {what}; give the organisation's label, name or "
                          "alias as the admins loaded them.", understood=False)
        if found:
            organisation = orgs.path(self.engine, found[0].label)
        profile = f"{rest[0]} {rest[1]}, {organisation}"
        store.register(self.engine, person, who.user_name, now)
        row = store.effective_user(self.engine, person)  # (a linked person's own row)
        store.set_user(self.engine, row.person if row else person, now, profile=profile,
                       organisation=found[0].label if found else None)
        audit.record(self.queue, self.config.audit_channel, "profile",
                     f"{person} set their profile: {profile}", actor=person, subject=person,
                     now=now)
        return Answer(f"Your profile is now: {profile}.", acknowledged=True)

    def _new_user_refusal(self, who: Requester) -> Answer | None:
        """``register_from`` forbids ``who`` to become a user from here (audited)."""
        text = refuse_registration(self.queue, self.config, who)
        return Answer(text, refused=True) if text else None

    def _quota_text(self, person: str, now: float, subject: str) -> str:
        quota = store.quota(self.engine, self.config.calc, person, now)
        window = "this month" if quota.window == "month" else "in the last 30 days"
        text = (f"{subject} used {quota.used} of {plural(quota.limit, 'calculation')} {window} "
                f"({quota.left} left)")
        if quota.resets_at is not None:
            text += f"; the next comes back on {clock(quota.resets_at, date=True)}"
        return text + "."

    def _calcs(self, person: str, none: str) -> str:
        rows = store.of_person(self.engine, person)
        if not rows:
            return none
        lines = []
        for row in rows:
            job = self.queue.get(row.job_id)
            state = job.state if job else "unknown"
            refund = " (refunded)" if row.refund_reason else ""
            lines.append(f"• calculation {row.job_id}: `{row.file_name}` with `{row.runner}` "
                         f"on {row.cluster}, {clock(row.created_at, True)}: {state}{refund}")
        return "Last calculations:\n" + "\n".join(lines)

    def _calc(self, job_id: int, who: Requester) -> Answer:
        row = store.of_job(self.engine, job_id)
        mine = row is not None and row.person in store.person_members(
            self.engine, who.qualified_user)
        if row is None or not (mine or self.config.is_admin(who.qualified_user)):
            return Answer(f"There is no calculation {job_id} of yours. `calcs` lists them.",
                          understood=False)
        job = self.queue.get(job_id)
        lines = [f"Calculation {job_id}: `{row.file_name}` with runner `{row.runner}` on "
                 f"cluster {row.cluster}, sent {clock(row.created_at, True)}: {job.state}."]
        if job.summary:
            lines.append(job.summary)
        if row.refund_reason:
            lines.append(f"It was not submitted ({row.refund_reason}) and does not count "
                         "against the quota.")
        removed = json.loads(row.results or "{}").get("removed_at")
        if job.state in ("queued", "running"):
            lines.append(f"`cancel {job_id}` stops it.")
        elif removed:
            lines.append(f"Its result files were removed on {clock(removed, True)}: they are "
                         "kept here only for a while.")
        else:
            self._resend(job_id, who)
            lines.append("Its report and result files follow.")
        return Answer("\n".join(lines))

    def _resend(self, job_id: int, who: Requester) -> None:
        """The calculation's report again, to whoever asked, through the outbound path."""
        from chatops.db import deliveries

        with reading(self.engine) as conn:
            payload = conn.execute(select(deliveries.c.payload).where(
                deliveries.c.job_id == job_id).order_by(deliveries.c.id.desc())).scalars()
            reports = [p for p in payload if '"kind": "report"' in p]
        if reports:
            payload = json.loads(reports[0])
            # new links: the report's own may have ended (retention keeps the files for these)
            payload["files"] = links.attach(self.settings, self.engine, job_id,
                                            payload.get("files") or [])
            self.queue.add_delivery(who.platform, payload, channel=who.channel,
                                    thread=who.thread, is_direct=who.is_direct, job_id=job_id)
            wakeup.notify(self.settings.run_dir, "outbox")
