"""Reports and notices out to Slack: text, blocks, code and files, within Slack's limits.

A delivery is a few steps (completion reaction, message parts, uploads, a support alert). Steps
already done are recorded with the delivery, so a retry after a rate limit (or after a restart)
resumes where it stopped instead of posting the same message twice. Every Slack failure becomes
a ``DeliveryError``: with ``retry_after`` on HTTP 429, ``permanent`` for errors no retry can fix.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.live import send_live
from bot.render import result_piece, too_large
from bot.slack.config import SlackSettings
from bot.slack.inbound import escape
from chatops.notify.render import for_platform
from chatops.platform import Delivery, DeliveryError
from chatops.report import Report, blocks_as_text

log = logging.getLogger("chatops.slack")

MESSAGE_CHARS = 3900  # Slack advises ≤ 4 000 characters a message
MAX_PARTS = 3  # longer text is uploaded as a file rather than flooding the thread
CODE_UPLOAD_CHARS = 4000  # code above this is uploaded as a snippet
PERMANENT_ERRORS = {
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
    "account_inactive", "token_revoked", "missing_scope", "no_permission", "restricted_action",
    "msg_too_long", "invalid_arguments", "user_not_found", "cannot_dm_bot",
    "team_access_not_granted",
}
IGNORED_REACTION_ERRORS = {"already_reacted", "message_not_found", "no_item_specified",
                           "invalid_name", "too_many_reactions", "bad_timestamp"}
# chat.update's answers for a message that cannot be edited any more: a new one is posted
EDIT_GONE = {"message_not_found", "cant_update_message", "edit_window_closed"}
METADATA_EVENT = "chatops_delivery"  # message metadata: which delivery and step posted it
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")  # an id, not a #name or a user


def split_text(text: str, limit: int = MESSAGE_CHARS) -> list[str]:
    """Cut text into parts of at most ``limit`` characters, at line ends where possible."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text or not parts:
        parts.append(text)
    return parts


def as_delivery_error(exc: Exception, what: str) -> DeliveryError:
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = response.get("error") or f"HTTP {response.status_code}"
        if response.status_code == 429:
            retry_after = float(response.headers.get("Retry-After") or 30)
            return DeliveryError(f"{what}: rate limited by Slack", retry_after=retry_after)
        return DeliveryError(f"{what}: Slack said {error}", permanent=error in PERMANENT_ERRORS)
    return DeliveryError(f"{what}: {type(exc).__name__}: {exc}")


class Sender:
    def __init__(self, client: WebClient, slack: SlackSettings):
        self.client = client
        self.slack = slack
        self._alerted: set[int] = set()  # jobs whose failure the support channel heard of

    def deliver(self, delivery: Delivery) -> None:
        report = delivery.report
        if delivery.payload.get("kind") == "live":
            self._live(delivery, escape(delivery.payload.get("text", "")[:MESSAGE_CHARS]))
        elif delivery.payload.get("kind") == "slurm":
            message = for_platform("slack", delivery.channel or "", delivery.payload,
                                   self.slack.templates_dir)
            self._post(delivery, "slurm", text=message["text"], blocks=message["blocks"])
        elif report is None:
            self._post_text(delivery, "notice", delivery.payload.get("text", ""))
        else:
            self._report(delivery, report)

    # -- steps ------------------------------------------------------------------------------

    def _step(self, delivery: Delivery, key: str, what: str, call: Callable[[], Any]) -> Any:
        """Run one API call once per delivery, whatever retries (or restarts) follow.

        A plain value ``call`` returns is kept for later steps (saved with the delivery)."""
        if key in delivery.progress:
            return delivery.progress[key]
        try:
            result = call()
        except (SlackApiError, SlackClientError, OSError) as exc:
            raise as_delivery_error(exc, what) from exc
        delivery.record(key, result if isinstance(result, str | None) else True)
        return result

    def _post(self, delivery: Delivery, key: str, **message: Any) -> str:
        """chat.postMessage in the delivery's thread; returns the channel id Slack used.

        Each message carries its delivery and step as metadata. A retry after a sender died
        (attempt 2 or later) first looks for them in the thread: a message Slack took before
        the step was recorded is not posted twice."""
        metadata = {"event_type": METADATA_EVENT,
                    "event_payload": {"delivery": str(delivery.id), "step": key}}
        if key not in delivery.progress and delivery.attempts > 1:
            found = self._posted_before(delivery, metadata["event_payload"])
            if found:
                delivery.record(key, found)
        channel = self._step(delivery, key, "chat.postMessage", lambda: (
            self.client.chat_postMessage(channel=delivery.channel, thread_ts=delivery.thread,
                                         unfurl_links=False, metadata=metadata, **message)
            .get("channel")))
        return channel or delivery.channel

    def _posted_before(self, delivery: Delivery, wanted: dict[str, str]) -> str | None:
        """The channel id, when the thread already holds this step's message."""
        if not delivery.thread or not delivery.channel:
            return None  # (a message outside a thread: not looked for)
        try:
            answer = self.client.conversations_replies(
                channel=delivery.channel, ts=delivery.thread, include_all_metadata=True,
                limit=200)
        except (SlackApiError, SlackClientError, OSError) as exc:  # e.g. a missing scope
            log.warning("delivery %s: cannot look in its thread before resending (%s)",
                        delivery.id, exc)
            return None
        for message in answer.get("messages") or ():
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload == wanted:
                log.info("delivery %s: %s had arrived before the sender stopped; not resent",
                         delivery.id, wanted["step"])
                return answer.get("channel") or delivery.channel
        return None

    def _live(self, delivery: Delivery, text: str) -> None:
        """Post a message that changes, or edit it (chat.update) with its newest text; a board
        is pinned (pins.add, scope pins:write)."""
        def post(_replacing: Any) -> dict[str, Any]:
            answer = self.client.chat_postMessage(channel=delivery.channel, text=text,
                                                  thread_ts=delivery.thread, unfurl_links=False)
            return {"channel": answer.get("channel"), "ts": answer["ts"]}

        def gone(exc: Exception) -> bool:
            return isinstance(exc, SlackApiError) and exc.response.get("error") in EDIT_GONE

        posted = delivery.progress.get("live")
        try:
            send_live(delivery, post=post, gone=gone,
                      edit=lambda m: self.client.chat_update(channel=m["channel"], ts=m["ts"],
                                                             text=text),
                      pin=lambda m: self.client.pins_add(channel=m["channel"],
                                                         timestamp=m["ts"]))
        except (SlackApiError, SlackClientError, OSError) as exc:
            raise as_delivery_error(exc, "chat.update" if posted else "chat.postMessage") \
                from exc

    def _post_text(self, delivery: Delivery, key: str, text: str) -> str:
        parts = split_text(text)
        if len(parts) > MAX_PARTS:
            return self._upload(delivery, key, text.encode(), "output.txt",
                                f"The output is {len(text.splitlines())} lines long; "
                                "it is attached.")
        channel = delivery.channel
        for index, part in enumerate(parts):
            channel = self._post(delivery, f"{key}.{index}", text=escape(part))
        return channel

    def _upload(self, delivery: Delivery, key: str, data: bytes | None,
                name: str, intro: str, path: str | None = None) -> str:
        """A short message, then the file right below it (files_upload_v2 needs a channel id,
        which the message's answer gives even when the delivery names a channel or user)."""
        channel = self._post(delivery, f"{key}.intro", text=escape(intro))
        if not _CHANNEL_ID.match(channel or ""):
            raise DeliveryError(f"cannot upload to {channel!r}: not a channel id", permanent=True)
        content: dict[str, Any] = {"file": path} if path else {"content": data}
        self._step(delivery, f"{key}.file", "files_upload_v2", lambda: self.client.files_upload_v2(
            channel=channel, thread_ts=delivery.thread, filename=name, title=name, **content))
        return channel

    def _react(self, delivery: Delivery, name: str) -> None:
        if not delivery.message or not delivery.channel:
            return
        try:
            self._step(delivery, "reaction", "reactions.add", lambda: self.client.reactions_add(
                channel=delivery.channel, timestamp=delivery.message, name=name))
        except DeliveryError as exc:
            if exc.retry_after is not None:
                raise
            cause = exc.__cause__
            error = cause.response.get("error") if isinstance(cause, SlackApiError) else None
            if error not in IGNORED_REACTION_ERRORS:
                log.warning("delivery %s: %s", delivery.id, exc)
            delivery.record("reaction", None)  # a missing one is not worth failing the report

    # -- reports ----------------------------------------------------------------------------

    def _report(self, delivery: Delivery, report: Report) -> None:
        self._react(delivery, self.slack.success_reaction if report.succeeded
                    else self.slack.failure_reaction)
        if report.silent:
            return
        if report.note:
            self._post_text(delivery, "note", report.note)
        name = f"{report.job_type}-{report.job_id}"
        if report.format == "blocks" and report.blocks:
            self._blocks(delivery, report, name)
        elif report.format == "code":
            self._code(delivery, "code", report.text, f"{name}.txt")
        elif report.format == "file" and report.file_path:
            path = Path(report.file_path)
            if path.is_file():
                self._upload(delivery, "file", None, report.file_name or path.name,
                             report.text or f"`{report.job_type}` (job {report.job_id})",
                             path=str(path))
            else:
                self._post_text(delivery, "file", f"{report.text}\n(The file {path.name} "
                                "is no longer there.)")
        else:
            channel = self._post_text(delivery, "text", report.text)
            for index, item in enumerate(report.files):  # a calculation's results
                length = os.path.getsize(item["path"])  # OSError: the caller reports it
                if length > self.slack.file_limit:
                    self._post_text(delivery, f"files.{index}", too_large(
                        result_piece(item), item["name"], length, self.slack.file_limit, "Slack"))
                    continue
                self._step(delivery, f"files.{index}", "files_upload_v2",
                           lambda item=item, channel=channel: self.client.files_upload_v2(
                               channel=channel, thread_ts=delivery.thread,
                               file=item["path"], filename=item["name"], title=item["name"]))
        if report.outcome in ("failed", "timed_out", "lost"):
            self._alert(delivery, report)

    def _code(self, delivery: Delivery, key: str, code: str,
              name: str) -> None:
        code = code.rstrip("\n")
        if len(code) > CODE_UPLOAD_CHARS:
            self._upload(delivery, key, code.encode(), name,
                         f"The output is {len(code.splitlines())} lines long; it is attached.")
        else:
            self._post(delivery, key, text=f"```\n{escape(code)}\n```")

    def _blocks(self, delivery: Delivery, report: Report,
                name: str) -> None:
        fallback = escape(blocks_as_text(report.blocks or []))[:MESSAGE_CHARS] or (
            f"`{report.job_type}` (job {report.job_id}) succeeded.")
        try:
            self._post(delivery, "blocks", blocks=report.blocks, text=fallback)
        except DeliveryError as exc:
            cause = exc.__cause__
            error = cause.response.get("error") if isinstance(cause, SlackApiError) else None
            if error not in ("invalid_blocks", "invalid_blocks_format"):
                raise
            self._post_text(delivery, "blocks.note",
                            f"Slack could not show this job's blocks ({error}); here is the "
                            "raw output.")
            self._code(delivery, "blocks.code", report.text, f"{name}.json")

    def _alert(self, delivery: Delivery, report: Report) -> None:
        """Tell the support channel about a failure once per job (never for direct messages)."""
        channel = self.slack.support_channel
        if not channel or delivery.is_direct or report.job_id in self._alerted:
            return
        where = (f"<#{delivery.channel}>" if _CHANNEL_ID.match(delivery.channel or "")
                 else escape(delivery.channel or "?"))
        text = (f":rotating_light: Job {report.job_id} (`{escape(report.job_type)}`) "
                f"{report.outcome.replace('_', ' ')}; asked in {where}.\n"
                + escape(report.text)[:MESSAGE_CHARS])
        try:
            self._step(delivery, "alert", "chat.postMessage (support channel)",
                       lambda: self.client.chat_postMessage(channel=channel, text=text))
        except DeliveryError as exc:
            if exc.retry_after is not None:
                raise
            log.error("could not alert the support channel %s about job %s: %s", channel,
                      report.job_id, exc)
        if len(self._alerted) > 10_000:
            self._alerted.clear()
        self._alerted.add(report.job_id)
