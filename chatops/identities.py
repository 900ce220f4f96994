"""Who is who on each chat platform, and which chats asked for Slurm's notifications.

``record`` is called by every platform when someone interacts, so later parts (the notification
pipeline, ``--mail-user`` resolution) can map a platform user to a cluster user. ``opt_in`` /
``opt_out`` keep ``notification_targets``: a chat that said ``/start`` (Telegram) or
``/mailuser`` (Discord) may receive notifications; one that said ``/stop`` may not.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from chatops.db import identities, notification_targets, reading


def record(engine: Engine, platform: str, user_id: str, display_name: str | None = None,
           now: float | None = None) -> None:
    """Remember (or refresh the name of) a platform user."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        changed = conn.execute(
            update(identities).where(identities.c.platform == platform,
                                     identities.c.user_id == user_id)
            .values(display_name=display_name, updated_at=now)).rowcount
        if changed:
            return
        try:
            with conn.begin_nested():
                conn.execute(insert(identities).values(
                    platform=platform, user_id=user_id, display_name=display_name,
                    created_at=now, updated_at=now))
        except IntegrityError:  # another process recorded them meanwhile: that is fine
            pass


def lookup(engine: Engine, platform: str, user_id: str) -> Row | None:
    with reading(engine) as conn:
        return conn.execute(select(identities).where(identities.c.platform == platform,
                                                     identities.c.user_id == user_id)).first()


def by_cluster_user(engine: Engine, cluster_user: str) -> list[Row]:
    """Every platform identity bound to a cluster (Slurm) user name."""
    with reading(engine) as conn:
        return list(conn.execute(select(identities)
                                 .where(identities.c.cluster_user == cluster_user)
                                 .order_by(identities.c.id)))


def bind_cluster_user(engine: Engine, platform: str, user_id: str, cluster_user: str | None,
                      now: float | None = None) -> bool:
    """Tie a platform identity to a cluster user (an admin's decision); False if unknown."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        return bool(conn.execute(
            update(identities).where(identities.c.platform == platform,
                                     identities.c.user_id == user_id)
            .values(cluster_user=cluster_user, updated_at=now)).rowcount)


def opt_in(engine: Engine, connector: str, target: str, user_id: str | None = None,
           now: float | None = None, cluster_user: str | None = None) -> None:
    """This chat wants notifications (again): set opted_in_at, clear opted_out_at.
    ``cluster_user``: the Slurm user whose bare-name mail (Slurm's default) it gets too."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        changed = conn.execute(
            update(notification_targets)
            .where(notification_targets.c.connector == connector,
                   notification_targets.c.target == target)
            .values(user_id=user_id, opted_in_at=now, opted_out_at=None,
                    **({"cluster_user": cluster_user} if cluster_user else {}))).rowcount
        if changed:
            return
        try:
            with conn.begin_nested():
                conn.execute(insert(notification_targets).values(
                    connector=connector, target=target, user_id=user_id, opted_in_at=now,
                    cluster_user=cluster_user))
        except IntegrityError:
            pass


def opt_out(engine: Engine, connector: str, target: str, now: float | None = None) -> bool:
    """Withdraw a chat's opt-in; False when it had none in force."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        return bool(conn.execute(
            update(notification_targets)
            .where(notification_targets.c.connector == connector,
                   notification_targets.c.target == target,
                   notification_targets.c.opted_out_at.is_(None))
            .values(opted_out_at=now)).rowcount)


def is_opted_in(engine: Engine, connector: str, target: str) -> bool:
    with reading(engine) as conn:
        row = conn.execute(select(notification_targets.c.opted_out_at).where(
            notification_targets.c.connector == connector,
            notification_targets.c.target == target)).first()
    return row is not None and row.opted_out_at is None


def target(engine: Engine, connector: str, target_id: str) -> Row | None:
    with reading(engine) as conn:
        return conn.execute(select(notification_targets).where(
            notification_targets.c.connector == connector,
            notification_targets.c.target == target_id)).first()
