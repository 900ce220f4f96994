"""Render one Slurm event for one connector: Jinja2 templates with the escaping each output needs.

Templates are looked up as ``<connector>/<event>.j2`` then ``<connector>/default.j2`` (mail and
Matrix: ``.txt.j2`` and ``.html.j2``), first in ``CHATOPS_TEMPLATES_DIR`` (a site's overrides),
then in the package. Every ``{{ value }}`` is escaped for its output: HTML for mail and Telegram,
``& < >`` for Slack mrkdwn, markdown for Discord. Teams cards are Python data serialised by
``json.dumps`` — values are never pasted into JSON text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from chatops.slurm.events import SlurmEvent
from chatops.texts import duration, slurm_ending

PACKAGE_DIR = Path(__file__).resolve().parent / "templates"
_DISCORD_SPECIAL = re.compile(r"([\\*_~`|>#\[\]()<:@-])")

EVENT_WORDS = {
    "BEGIN": "began", "END": "ended", "FAIL": "failed", "REQUEUE": "was requeued",
    "INVALID_DEPEND": "has an invalid dependency", "STAGE_OUT": "finished staging out",
}


def slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def discord_escape(value: str) -> str:
    return _DISCORD_SPECIAL.sub(r"\\\1", value)


def _finalize(escape: Callable[[str], str]) -> Callable[[Any], str]:
    return lambda value: "" if value is None else escape(str(value))


@lru_cache(maxsize=8)
def environment(site_dir: str | None, style: str) -> jinja2.Environment:
    """One environment per escaping style; ``site_dir`` templates win over the package's."""
    loaders: list[jinja2.BaseLoader] = []
    if site_dir:
        loaders.append(jinja2.FileSystemLoader(site_dir))
    loaders.append(jinja2.FileSystemLoader(str(PACKAGE_DIR)))
    options: dict[str, Any] = {"loader": jinja2.ChoiceLoader(loaders),
                               "undefined": jinja2.ChainableUndefined}
    if style == "html":
        options["autoescape"] = True
    elif style == "slack":
        options["finalize"] = _finalize(slack_escape)
    elif style == "discord":
        options["finalize"] = _finalize(discord_escape)
    return jinja2.Environment(**options)


def title(event: SlurmEvent, ending: Mapping[str, Any] | None = None) -> str:
    """``ending``: what sacct added (``signal``, ``started``); Slurm's environment gives a
    TIMEOUT or a cancelled job exit code 0 and keeps the signal on the batch step."""
    what = EVENT_WORDS.get(event.mail_type)
    if what is None and event.time_limit_percent:
        what = f"reached {event.time_limit_percent} % of its time limit"
    what = what or (event.mail_type_text or event.mail_type).lower()
    text = f"Slurm job {event.display_id or '?'} {what}"
    if event.finished and event.state:
        ending = ending or {}
        started = ending.get("started")
        if started is None and event.run_time_seconds == 0 and not event.nodes:
            started = False  # cancelled while pending: no node, no run time
        how = slurm_ending(event.state, event.exit_code, event.signal or ending.get("signal"),
                           started)
        text += f": {event.state}" + (f", {how}" if how else "")
    return text


def context(event: SlurmEvent, stats: Mapping[str, Any] | None) -> dict[str, Any]:
    stats = stats or {}
    return {
        "title": title(event, stats), "job_id": event.display_id, "job_name": event.job_name,
        "user": event.user, "cluster": event.cluster, "partition": event.partition,
        "nodes": event.nodes, "num_nodes": event.num_nodes, "state": event.state,
        "exit_code": event.exit_code, "signal": event.signal, "mail_type": event.mail_type,
        "run_time": (duration(event.run_time_seconds) if event.run_time_seconds is not None
                     else None),
        "work_dir": event.work_dir, "stats": stats.get("stats"),
        "hints": list(stats.get("hints") or []),
    }


def _render(site_dir: str | None, style: str, names: list[str], ctx: Mapping[str, Any]) -> str:
    template = environment(site_dir, style).select_template(names)
    return re.sub(r"\n{3,}", "\n\n", template.render(**ctx)).strip()


def _names(connector: str, mail_type: str, suffix: str) -> list[str]:
    return [f"{connector}/{mail_type.lower()}{suffix}", f"{connector}/default{suffix}"]


def render(connector: str, target: str, ctx: Mapping[str, Any],
           site_dir: str | None = None) -> dict[str, Any]:
    """The payload the connector sends (see each connector for its keys)."""
    mail_type = str(ctx.get("mail_type") or "default")
    if connector == "msteams":
        from chatops.notify.teams_card import card_message

        return {"card": card_message(ctx, target)}
    if connector in ("mailto", "matrix"):
        return {
            "subject": str(ctx["title"]),
            "text": _render(site_dir, "text", _names(connector, mail_type, ".txt.j2"), ctx),
            "html": _render(site_dir, "html", _names(connector, mail_type, ".html.j2"), ctx),
        }
    style = {"telegram": "html", "slack": "slack", "discord": "discord"}.get(connector, "text")
    text = _render(site_dir, style, _names(connector, mail_type, ".j2"), ctx)
    if connector == "slack":
        fallback = slack_escape(str(ctx["title"]))
        return {"text": fallback, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}
    return {"text": text}


def render_plain(connector: str, target: str, text: str) -> dict[str, Any]:
    """A short service message (a suppression summary) in the connector's format."""
    if connector == "msteams":
        from chatops.notify.teams_card import card_message

        return {"card": card_message({"title": text, "hints": []}, target)}
    if connector in ("mailto", "matrix"):
        return {"subject": text, "text": text, "html": f"<p>{html.escape(text)}</p>"}
    if connector == "slack":
        return {"text": slack_escape(text), "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(text)}}]}
    if connector == "telegram":
        return {"text": html.escape(text, quote=False)}
    if connector == "discord":
        return {"text": discord_escape(text)}
    return {"text": text}


def slurm_message(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The platform-neutral outbound message of one Slurm event (its fields; each platform
    renders it with its own templates when it sends)."""
    return {"kind": "slurm", "event": dict(ctx)}


def for_platform(platform: str, target: str, payload: Mapping[str, Any],
                 site_dir: str | None = None) -> dict[str, Any]:
    """A Slurm message or a notice in the platform's format (the keys ``render`` gives)."""
    if payload.get("kind") == "slurm":
        return render(platform, target, payload["event"], site_dir)
    return render_plain(platform, target, str(payload.get("text", "")))


def templates_dir(environ: Mapping[str, str]) -> str | None:
    """The site's template overrides (CHATOPS_TEMPLATES_DIR), if any."""
    return environ.get("CHATOPS_TEMPLATES_DIR") or None
