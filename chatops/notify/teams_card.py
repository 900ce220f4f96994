"""The Microsoft Teams message: an Adaptive Card built as data, with a mention of the user.

Built as Python dicts and serialised with ``json.dumps`` by the connector, so a ``"`` or ``<``
in a job name can never break the JSON (the shortcoming of goslmailer's text template).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CARD_VERSION = "1.4"
FACTS = (("Name", "job_name"), ("User", "user"), ("Cluster", "cluster"),
         ("Partition", "partition"), ("Nodes", "nodes"), ("Run time", "run_time"))
STAT_FACTS = (("CPU efficiency", "cpu_efficiency"), ("Memory used", "memory_used"),
              ("Memory requested", "memory_requested"), ("Memory efficiency", "memory_efficiency"),
              ("Elapsed", "elapsed"), ("Time limit", "time_limit"))


def card(ctx: Mapping[str, Any], mention: str | None) -> dict[str, Any]:
    facts = [{"title": label, "value": str(ctx[key])} for label, key in FACTS if ctx.get(key)]
    stats = ctx.get("stats") or {}
    facts += [{"title": label, "value": str(stats[key])} for label, key in STAT_FACTS
              if stats.get(key) is not None]
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": str(ctx["title"]),
                                   "weight": "Bolder", "wrap": True}]
    entities = []
    if mention:
        tag = f"<at>{mention}</at>"
        body.append({"type": "TextBlock", "text": f"For {tag}", "wrap": True})
        entities.append({"type": "mention", "text": tag,
                         "mentioned": {"id": mention, "name": mention}})
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    body += [{"type": "TextBlock", "text": f"- {hint}", "wrap": True}
             for hint in ctx.get("hints") or ()]
    result: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": CARD_VERSION, "body": body,
    }
    if entities:
        result["msteams"] = {"entities": entities}
    return result


def card_message(ctx: Mapping[str, Any], mention: str | None) -> dict[str, Any]:
    """What an incoming webhook / Workflows trigger takes: a message with one card attached."""
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": card(ctx, mention)}]}
