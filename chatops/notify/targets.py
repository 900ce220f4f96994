"""Who gets a Slurm event: MAIL_USER entries resolved, authorised and de-duplicated.

A bare name is first taken as a Slurm user: it stands for every target that user registered
(``notification_targets.cluster_user``, or an opted-in chat of a platform identity bound to that
cluster user). Otherwise it goes to the default connector. A target receives notifications only
if it opted in (a row without ``opted_out_at``), or an admin allowed it (Slack channels listed in
the config, e-mail/Teams addresses by domain or pattern): nobody can send job mail into a chat
that did not ask for it. Every refusal is logged with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine, and_, or_, select

from chatops.db import identities, notification_targets
from chatops.notify.config import NotifyConfig
from chatops.slurm.events import SlurmEvent

log = logging.getLogger("chatops.notify")


@dataclass(frozen=True)
class Target:
    connector: str
    target: str


def registered_targets(engine: Engine, cluster_user: str) -> list[Target]:
    """The opted-in targets a Slurm user registered, directly or through a chat identity."""
    nt = notification_targets
    bound = select(identities.c.user_id).where(identities.c.cluster_user == cluster_user,
                                               identities.c.platform == nt.c.connector)
    query = (select(nt.c.connector, nt.c.target)
             .where(nt.c.opted_out_at.is_(None),
                    or_(nt.c.cluster_user == cluster_user,
                        and_(nt.c.user_id.is_not(None), nt.c.user_id.in_(bound.scalar_subquery()))))
             .order_by(nt.c.id))
    with engine.connect() as conn:
        return [Target(r.connector, r.target) for r in conn.execute(query)]


def _opted_in(engine: Engine, target: Target, cache: dict | None = None) -> bool:
    if cache is not None and target in cache:
        return cache[target]
    nt = notification_targets
    with engine.connect() as conn:
        found = conn.execute(select(nt.c.id).where(
            nt.c.connector == target.connector, nt.c.target == target.target,
            nt.c.opted_out_at.is_(None))).first() is not None
    if cache is not None:
        cache[target] = found
    return found


def _address_allowed(address: str, domains: Collection[str], patterns: Collection) -> bool:
    domain = address.rpartition("@")[2].lower() if "@" in address else None
    if domain and any(domain == d or domain.endswith("." + d) for d in domains):
        return True
    return any(p.search(address) for p in patterns)


def refusal(engine: Engine, cfg: NotifyConfig, target: Target,
            available: Collection[str], cache: dict | None = None) -> str | None:
    """Why ``target`` may not receive notifications, or None when it may."""
    if target.connector not in available:
        return f"the {target.connector!r} connector is not configured"
    if _opted_in(engine, target, cache):
        return None
    if target.connector == "slack" and target.target in cfg.slack_channels:
        return None
    if target.connector == "mailto" and _address_allowed(target.target, cfg.mail_domains,
                                                         cfg.mail_patterns):
        return None
    if target.connector == "msteams" and _address_allowed(target.target, cfg.teams_domains, ()):
        return None
    return "it has not opted in and is not on the connector's allow-list"


def resolve(engine: Engine, cfg: NotifyConfig, event: SlurmEvent,
            available: Collection[str], cache: dict | None = None) -> list[Target]:
    """The authorised, de-duplicated targets of ``event``; refusals are logged."""
    what = f"event {event.event_id} (job {event.display_id})"
    for entry in event.rejected_receivers:
        log.warning("%s: MAIL_USER entry %r refused: not a valid connector:target", what, entry)
    candidates: list[Target] = []
    for receiver in event.receivers:
        if receiver.connector is not None:
            candidates.append(Target(receiver.connector, receiver.target))
            continue
        registered = registered_targets(engine, receiver.target)
        if registered:
            candidates.extend(registered)
        elif cfg.default_connector:
            candidates.append(Target(cfg.default_connector, receiver.target))
        else:
            log.warning("%s: %r refused: no targets registered for that user and no default "
                        "connector", what, receiver.target)
    out: list[Target] = []
    for target in dict.fromkeys(candidates):  # duplicates collapsed, order kept
        why = refusal(engine, cfg, target, available, cache)
        if why is None:
            out.append(target)
        else:
            log.warning("%s: %s:%r refused: %s", what, target.connector, target.target, why)
    return out
