"""The cluster monitor in chat and on the dashboard: ``cluster status [name]`` (from the latest
poll, with uptime over 24 h and 7 d) and ``cluster history <name> [24h|7d]``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine

from chatops import monitor_store as store
from chatops.job_config import Config
from chatops.monitor_config import MonitorSpec
from chatops.monitor_texts import EMOJI, Clock, board_text
from chatops.schedule_chat import span

WINDOWS = {"24h": 86400.0, "7d": 7 * 86400.0}
HISTORY_LINES = 50  # the newest; the dashboard shows the rest
STALE_POLLS = 3  # cadences without a poll before the answer says no one is polling


@dataclass(frozen=True)
class ClusterView:
    """One monitored cluster as the dashboard shows it."""

    spec: MonitorSpec
    state: store.State | None
    board: str
    uptime: dict[str, float | None]
    stale: str  # why the state may be old ("" when fresh)


def uptime_text(value: float | None) -> str:
    return "unknown" if value is None else f"{value * 100:.1f} %"


def view(spec: MonitorSpec, state: store.State | None, engine: Engine, now: float
         ) -> ClusterView:
    uptime = {name: store.uptime(engine, spec.cluster, now - seconds, now)
              for name, seconds in WINDOWS.items()}
    if state is None:
        return ClusterView(spec, None, f"{spec.cluster}: not polled yet (every "
                           f"{spec.cadence_text})", uptime, "")
    clock = Clock(spec.timezone, now)
    board = board_text(spec.cluster, state.snapshot, state.since, state.polled_at, clock,
                       spec.partitions, state.last_error)
    stale = ""
    if now - state.polled_at > STALE_POLLS * spec.cadence + spec.timeout:
        stale = (f"no poll for {span(now - state.polled_at)} (every {spec.cadence_text}): is a "
                 "dispatcher running?")
    return ClusterView(spec, state, board, uptime, stale)


def views(config: Config, engine: Engine, now: float | None = None) -> list[ClusterView]:
    now = time.time() if now is None else now
    states = store.states(engine)
    return [view(spec, states.get(name), engine, now) for name, spec in config.monitors.items()]


def _find(config: Config, name: str) -> tuple[MonitorSpec | None, str]:
    spec = next((s for n, s in config.monitors.items() if n.lower() == name.lower()), None)
    if spec is None:
        known = ", ".join(f"`{n}`" for n in config.monitors) or "none"
        return None, f"There is no monitored cluster `{name}` (monitored: {known})."
    return spec, ""


def cluster_status(config: Config, engine: Engine, name: str | None = None,
                   now: float | None = None) -> str:
    now = time.time() if now is None else now
    if not config.monitors:
        return ("No cluster is monitored: job_configs.py lists them under `monitors` "
                "(docs/configuration.md, Monitors).")
    if name is not None:
        spec, problem = _find(config, name)
        if spec is None:
            return problem
        one = view(spec, store.load(engine, spec.cluster), engine, now)
        lines = [one.board, _uptime_line(one)]
        return "\n".join(lines + ([f"⚠️ {one.stale}"] if one.stale else []))
    lines = []
    for one in views(config, engine, now):
        if one.state is None:
            lines.append(f"• {one.board}")
            continue
        snap = one.state.snapshot
        line = (f"• {EMOJI[snap.state]} {one.spec.cluster} {snap.state} for "
                f"{span(now - one.state.since)}")
        if snap.problems:
            line += f", {len(snap.problems)} problem node(s)"
        line += f"; {_uptime_line(one).lower()}"
        lines.append(line + (f" ⚠️ {one.stale}" if one.stale else ""))
    return "\n".join([f"Monitored clusters ({len(lines)}); `cluster status <name>` shows one:",
                      *lines])


def _uptime_line(one: ClusterView) -> str:
    return (f"Uptime: {uptime_text(one.uptime['24h'])} (24 h), "
            f"{uptime_text(one.uptime['7d'])} (7 d)")


def cluster_history(config: Config, engine: Engine, name: str, window: str = "24h",
                    now: float | None = None) -> str:
    now = time.time() if now is None else now
    spec, problem = _find(config, name)
    if spec is None:
        return problem or ""
    clock = Clock(spec.timezone, now)
    rows = store.transitions(engine, spec.cluster, now - WINDOWS[window])
    if not rows:
        return f"No changes on `{spec.cluster}` in the last {window}."
    lines = [transition_line(row, clock) for row in rows]
    head = f"Changes on `{spec.cluster}` in the last {window} ({len(lines)}"
    if len(lines) > HISTORY_LINES:
        head += f"; the newest {HISTORY_LINES} here, all of them on the dashboard's Clusters page"
        lines = lines[-HISTORY_LINES:]
    return "\n".join([head + "):", *lines])


def transition_line(row, clock: Clock) -> str:
    when = clock.full(row.at)
    if row.node is None:
        was = f"{row.from_state} → " if row.from_state else "first poll: "
        line = f"{when} cluster {was}{row.to_state}"
        return line + (f" ({row.reason})" if row.reason else "")
    if row.to_state == "ok":
        return f"{when} {row.node} back to {row.reason or 'service'} (was {row.from_state})"
    line = f"{when} {row.node} {row.to_state}"
    return line + (f": '{row.reason}'" if row.reason else "")
