"""Schedules in chat and in reports: ``schedules``, ``pause schedule``, ``resume schedule``, the
next fires in ``status``, and the note a scheduled job's report carries (late, joined, held)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from chatops import schedule_store as store
from chatops.access import refusal
from chatops.events import Requester
from chatops.job_config import Config, NamespaceSpec
from chatops.schedule_config import ScheduleSpec
from chatops.texts import ago, clock, plural

GRACE_SECONDS = 60.0  # a fire taken later than this was missed: its report says how late


@dataclass(frozen=True)
class Answer:
    text: str
    refused: bool = False
    understood: bool = True
    acknowledged: bool = False


def may_manage(config: Config, namespace: NamespaceSpec, who: Requester) -> str | None:
    """Why ``who`` may not pause or resume the namespace's schedules (None: they may): admins,
    and the people who may use the namespace (its allowed users; everyone, when it lists none)."""
    if config.is_admin(who.qualified_user):
        return None
    return refusal(namespace, who)


def span(seconds: float) -> str:
    """``3 h 12 min``, ``5 min``, ``40 s``: how late, how long."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p)


def _when(spec: ScheduleSpec, ts: float, now: float) -> str:
    ahead = ts - now
    return f"{spec.trigger.local(ts)} (in {ago(ahead)})" if ahead >= 0 else spec.trigger.local(ts)


def _last(spec: ScheduleSpec, row) -> str:
    if row is None:
        return "not run yet"
    when = spec.trigger.local(row.fire_at)
    if row.outcome == "skipped":
        return f"{when} skipped (missed by {span(row.late_by)}; misfire: skip)"
    state = row.state or "unknown"
    what = {"queued": "waiting to start", "running": "running"}.get(state, state)
    return f"{when} job {row.job_id} {what}"


def list_schedules(config: Config, engine: Engine, now: float | None = None) -> str:
    now = time.time() if now is None else now
    schedules = config.schedules()
    if not schedules:
        return ("No schedules are configured. A namespace lists them under `schedules` in "
                "job_configs.py.")
    last, state = store.last_fires(engine), store.states(engine)
    lines = [f"Schedules ({len(schedules)}):"]
    for spec in schedules:
        args = " ".join(f"{k}={v}" for k, v in spec.args)
        row = state.get(spec.key)
        if row is not None and row.paused_at is not None:
            upcoming = f"paused by {row.paused_by} since {spec.trigger.local(row.paused_at)}"
        else:
            upcoming = "next " + _when(spec, spec.trigger.next_after(now), now)
        lines.append(f"• `{spec.key}`: `{spec.job_type}`{' ' + args if args else ''}, "
                     f"{spec.trigger.text}; {upcoming}; last: {_last(spec, last.get(spec.key))}")
    return "\n".join(lines)


def find(config: Config, namespace: str, name: str) -> tuple[ScheduleSpec | None, str | None]:
    ns = next((n for n in config.namespaces.values() if n.name.lower() == namespace.lower()),
              None)
    if ns is None:
        return None, f"There is no namespace `{namespace}`. `schedules` lists every schedule."
    spec = next((s for s in ns.schedules if s.name.lower() == name.lower()), None)
    if spec is None and not ns.schedules:
        return None, (f"Namespace `{ns.name}` has no schedules: job_configs.py lists them "
                      "under its `schedules`.")
    if spec is None:
        known = ", ".join(f"`{s.name}`" for s in ns.schedules)
        return None, f"Namespace `{ns.name}` has no schedule `{name}` (its schedules: {known})."
    return spec, None


def pause_or_resume(config: Config, engine: Engine, namespace: str, name: str, pause: bool,
                    who: Requester, now: float | None = None) -> Answer:
    now = time.time() if now is None else now
    spec, problem = find(config, namespace, name)
    if spec is None:
        return Answer(problem or "", understood=False)
    why_not = may_manage(config, config.namespaces[spec.namespace], who)
    if why_not:
        return Answer(why_not, refused=True)
    by = who.user_name or who.qualified_user
    if store.set_paused(engine, spec, by if pause else None, now):
        if pause:
            return Answer(f"Paused schedule `{spec.key}`: it will not run until "
                          f"`resume schedule {spec.namespace} {spec.name}`.", acknowledged=True)
        return Answer(f"Resumed schedule `{spec.key}`; next run "
                      f"{_when(spec, spec.trigger.next_after(now), now)}. Runs missed while it "
                      "was paused are not made up.", acknowledged=True)
    return Answer(f"Schedule `{spec.key}` is already {'paused' if pause else 'running'}.")


def next_fires(config: Config, engine: Engine, now: float, limit: int = 5) -> str:
    """The next fires of the schedules that are not paused, soonest first (for ``status``)."""
    schedules = config.schedules()
    if not schedules:
        return ""
    state = store.states(engine)
    active = [s for s in schedules
              if state.get(s.key) is None or state[s.key].paused_at is None]
    upcoming = sorted((s.trigger.next_after(now), s) for s in active)
    lines = [f"Next scheduled runs ({plural(len(active), 'schedule')} active, "
             f"{len(schedules) - len(active)} paused):"]
    for ts, spec in upcoming[:limit]:
        lines.append(f"• `{spec.key}` {_when(spec, ts, now)}")
    return "\n".join(lines)


def fire_note(spec: ScheduleSpec | None, key: str, fires: Sequence) -> str:
    """What a scheduled job's report adds: which fire(s) it ran for, and how late or held."""
    def local(ts: float) -> str:
        return spec.trigger.local(ts) if spec else clock(ts)

    first = fires[0]
    if len(fires) == 1:
        note = f"Scheduled run of `{key}` for {local(first.fire_at)}"
    else:
        times = ", ".join(local(f.fire_at) for f in fires)
        note = (f"Scheduled runs of `{key}` for {times} ran as this one job (a later fire came "
                "while the job was still waiting to start)")
    if first.late_by > GRACE_SECONDS:
        note += (f"; it started {span(first.late_by)} late: no dispatcher was running at "
                 f"{local(first.fire_at)}")
    held = max((f.held_until or 0 for f in fires), default=0)
    if held:
        note += f"; held by a suppression until {local(held)}"
    return note + "."

