"""E-mail: Slurm notifications (and notices) by SMTP, one multipart (text + HTML) message each.

Outbound only: the dispatcher's process sends it (``chatops dispatcher`` starts its sender).
Settings: CHATOPS_SMTP_HOST (this turns it on), CHATOPS_SMTP_PORT (25), CHATOPS_SMTP_USER and
CHATOPS_SMTP_PASSWORD (a login when both are set), CHATOPS_SMTP_STARTTLS, CHATOPS_SMTP_FROM.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import ClassVar

from chatops.notify.render import for_platform, templates_dir
from chatops.platform import Delivery, DeliveryError, Platform
from chatops.report import Report
from chatops.service import Service
from chatops.settings import Settings

TIMEOUT = 10.0


class MailPlatform(Platform):
    name = "mailto"
    inbound: ClassVar[bool] = False

    def __init__(self, service: Service):
        environ = service.settings.environ
        self.host = environ.get("CHATOPS_SMTP_HOST") or "localhost"
        self.port = int(environ.get("CHATOPS_SMTP_PORT") or 25)
        self.user = environ.get("CHATOPS_SMTP_USER") or None
        self.password = service.settings.secret("CHATOPS_SMTP_PASSWORD") or None
        self.starttls = (environ.get("CHATOPS_SMTP_STARTTLS") or "").lower() in ("1", "true",
                                                                                 "yes")
        self.sender = environ.get("CHATOPS_SMTP_FROM") or "chatops@localhost"
        self.site_dir = templates_dir(environ)

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return bool(settings.environ.get("CHATOPS_SMTP_HOST"))

    def deliver(self, delivery: Delivery) -> None:
        target = delivery.channel or ""
        payload = delivery.payload
        if payload.get("kind") == "report":  # a report by mail: its text, as a notice
            report = Report.from_payload(payload)
            payload = {"kind": "notice", "text": report.text or report.note or ""}
        message = for_platform(self.name, target, payload, self.site_dir)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, target, message["subject"]
        msg.set_content(message["text"])
        msg.add_alternative(message["html"], subtype="html")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user and self.password:
                    smtp.login(self.user, self.password)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"the mail server refused {target}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP error {exc.smtp_code}",
                                permanent=500 <= exc.smtp_code < 600) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP failed: {type(exc).__name__}: {exc}") from exc
