"""``POST /github/<namespace>/``: GitHub webhooks that schedule jobs.

The signature is checked on the raw body before anything is parsed. Which events schedule which
jobs is each namespace's ``github`` rules (chatops/github_rules.py). A delivery id is remembered,
so a redelivery schedules nothing twice. Nothing slow runs here: the job is queued and the
answer (202 with the job id) goes back at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select, update

from chatops import wakeup
from chatops.db import insert_new, webhook_deliveries
from chatops.events import Requester
from chatops.job_config import NamespaceSpec
from chatops.params import args_problem
from chatops.payloads import BadPayload, load
from chatops.report import notice
from chatops.service import Service
from chatops.texts import clock
from webserver.github_match import Match, MissingField, match_rules
from webserver.github_schema import PAYLOAD

log = logging.getLogger("chatops.github")
bp = Blueprint("github", __name__)

MAX_DELIVERY_ID = 100  # the column's width; GitHub's ids are GUIDs


def signature_ok(secret: str, body: bytes, sha256: str | None, sha1: str | None,
                 allow_sha1: bool) -> bool:
    """Whether the body was signed with ``secret`` (constant-time comparison)."""
    key = secret.encode()
    if sha256:
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), sha256.strip().encode())
    if sha1 and allow_sha1:
        expected = "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
        return hmac.compare_digest(expected.encode(), sha1.strip().encode())
    return False


def chat_platform() -> str:
    """Where jobs scheduled by GitHub report: Slack when it is configured (``default_channel``
    is a Slack channel, as in the predecessor), else the console (read on the dashboard)."""
    return "slack" if "slack" in current_app.extensions["chatops.platforms"] else "console"


def report_requester(ns: NamespaceSpec, sender: str | None) -> Requester:
    """The job's report goes to the namespace's default channel on the chat platform."""
    who = sender or "github"
    return Requester(platform=chat_platform(), user=f"github:{who}",
                     channel=ns.default_channel or f"github-{ns.name}", user_name=who,
                     is_guest=False)


def _answer(status: int, outcome: str, message: str, **extra: Any):
    metrics = current_app.extensions.get("chatops.metrics")
    if metrics is not None:
        metrics.webhook_answered(request.headers.get("X-GitHub-Event") or "-", outcome)
    return jsonify(outcome=outcome, message=message, **extra), status


def _service() -> Service:
    return current_app.extensions["chatops.service"]


@bp.post("/github/<namespace>/")
@bp.post("/github/<namespace>")
def webhook(namespace: str):
    service = _service()
    secret = service.settings.secret("GITHUB_WEBHOOK_SECRET")
    if not secret:
        return _answer(403, "disabled", "GitHub webhooks are off here: set "
                       "GITHUB_WEBHOOK_SECRET to the webhook's secret.")
    ns = service.config.namespaces.get(namespace)
    body = request.get_data(cache=True)
    if not signature_ok(secret, body, request.headers.get("X-Hub-Signature-256"),
                        request.headers.get("X-Hub-Signature"),
                        allow_sha1=bool(ns and ns.github_legacy_sha1)):
        return _answer(401, "bad_signature", "Missing or wrong X-Hub-Signature-256: check the "
                       "webhook's secret.")
    if ns is None:
        return _answer(404, "unknown_namespace", f"There is no namespace {namespace!r}.")
    if not request.is_json:
        return _answer(415, "unsupported_type", "Set the webhook's content type to "
                       "application/json.")
    event = request.headers.get("X-GitHub-Event", "")
    if not event:
        return _answer(400, "bad_request", "The X-GitHub-Event header is missing.")
    try:
        payload = load(body, PAYLOAD, "the payload")
    except BadPayload as exc:
        return _answer(400, "bad_request", f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
    delivery = (request.headers.get("X-GitHub-Delivery") or "")[:MAX_DELIVERY_ID] or None
    if event == "ping":
        _record(service, delivery, namespace, event, lambda: ("ping", None))
        return _answer(200, "ping", f"pong: namespace {namespace!r} has "
                       f"{len(ns.github)} GitHub rule(s).", zen=payload.get("zen"))
    try:
        found = match_rules(ns.github, event, payload, delivery)
    except MissingField as exc:
        seen = _record(service, delivery, namespace, event, lambda: ("missing_field", None))
        return _duplicate(delivery, seen) if seen else _answer(422, "missing_field", f"{exc}.")
    if not found:
        seen = _record(service, delivery, namespace, event, lambda: ("ignored", None))
        if seen:
            return _duplicate(delivery, seen)
        action = f" {payload['action']}" if isinstance(payload.get("action"), str) else ""
        return _answer(200, "ignored", f"No GitHub rule of namespace {ns.name!r} schedules "
                       f"anything for {event}{action}.")
    unusable = next(filter(None, (args_problem(m.args) for m in found)), None)
    if unusable:
        seen = _record(service, delivery, namespace, event, lambda: ("bad_args", None))
        return _duplicate(delivery, seen) if seen else _answer(
            422, "bad_args", f"Nothing scheduled: {unusable}.")
    requester = report_requester(ns, _sender(payload))
    jobs: list[dict[str, Any]] = []

    def schedule() -> tuple[str, int]:
        jobs.extend(_enqueue(service, ns, match, requester) for match in found)
        return "scheduled", jobs[0]["job_id"]

    seen = _record(service, delivery, namespace, event, schedule)
    if seen:
        return _duplicate(delivery, seen)
    wakeup.notify(service.settings.run_dir, "dispatcher")
    if any("suppressed_until" in job for job in jobs):
        wakeup.notify(service.settings.run_dir, "outbox")
    log.info("github %s for %s scheduled job(s) %s", event, ns.name,
             ", ".join(str(j["job_id"]) for j in jobs))
    return _answer(202, "scheduled", "Scheduled " + "; ".join(
        f"job {j['job_id']} ({j['job_type']}) at {clock(j['start_after'])}" for j in jobs) + ".",
        job_id=jobs[0]["job_id"], jobs=jobs)


def _duplicate(delivery: str | None, seen):
    return _answer(200, "duplicate", f"Delivery {delivery} was already handled "
                   f"({seen.outcome}).", job_id=seen.job_id)


def _sender(payload: dict[str, Any]) -> str | None:
    sender = payload.get("sender")
    login = sender.get("login") if isinstance(sender, dict) else None
    return login if isinstance(login, str) else None


def _enqueue(service: Service, ns: NamespaceSpec, match: Match,
             requester: Requester) -> dict[str, Any]:
    spec = ns.jobs[match.rule.job_type]
    result = service.queue.enqueue(spec.type, match.args, requester, timeout=spec.timeout,
                                   concurrency=spec.concurrency,
                                   delay=match.rule.delay_seconds)
    job = {"job_id": result.job_id, "job_type": spec.type, "start_after": result.start_after,
           "joined": result.joined, "args": match.args}
    for s in service.queue.suppressions():
        if s.job_type == spec.type and s.start_at <= result.start_after < s.end_at:
            job["suppressed_until"] = s.end_at
            service.queue.add_delivery(
                requester.platform, notice(suppression_text(ns, match, result.job_id, s.end_at)),
                channel=requester.channel, job_id=result.job_id)
            break
    return job


def suppression_text(ns: NamespaceSpec, match: Match, job_id: int, end_at: float) -> str:
    job_type = f"{ns.name}_{match.rule.job_type}"
    lift = next((c for c in ns.commands if c.action == "cancel_suppression"
                 and c.job_type == match.rule.job_type), None)
    how = (f"`{ns.name} {lift.pattern}` lifts it now." if lift else
           "No command of this namespace lifts it early; it ends by itself.")
    return (f"GitHub ({match.rule.describe()}) scheduled job {job_id} (`{job_type}`), but "
            f"`{job_type}` is suppressed until {clock(end_at)}: the job waits until then. {how}")


# -- remembered deliveries --------------------------------------------------------------------

def _record(service: Service, delivery: str | None, namespace: str, event: str,
            handle: Callable[[], tuple[str, int | None]]):
    """Handle a delivery once: ``handle`` (which queues its jobs) and the record of the delivery
    id with its outcome are one transaction, so a process killed mid-request leaves neither and
    GitHub's redelivery is handled afresh. Returns the earlier record of a redelivery (and
    handles nothing), else None. Without a delivery id there is nothing to remember."""
    if delivery is None:
        handle()
        return None
    queue = service.queue
    with queue.atomic() as conn:
        # Inserted first: a concurrent request with the same id waits here for this one.
        new = conn.execute(insert_new(queue.engine, webhook_deliveries, delivery_id=delivery,
                                      namespace=namespace, event=event[:100],
                                      received_at=time.time(), outcome="received")).first()
        if new is None:
            seen = conn.execute(select(webhook_deliveries).where(
                webhook_deliveries.c.delivery_id == delivery)).first()
            # "received" is only ever committed by versions that recorded a delivery before
            # handling it, when killed mid-request: nothing was settled, so handle it now.
            if seen.outcome != "received":
                return seen
        outcome, job_id = handle()
        conn.execute(update(webhook_deliveries)
                     .where(webhook_deliveries.c.delivery_id == delivery)
                     .values(outcome=outcome, job_id=job_id))
    return None
