"""Alerts: a blocked gate is announced at once through every configured channel.

Channels are pluggable (anything with ``send(alert)``); webhook (JSON POST) and SMTP (a
Chinese e-mail) ship. A channel that fails is reported, never raised: the gate's own failure
must not be hidden behind an alerting error.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Protocol

from citylake.settings import AlertSettings, Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    title: str  # one line, Chinese first
    body: str  # what failed, where, and why
    gate: str
    table: str
    severity: str
    at: str  # ISO 8601, UTC


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


@dataclass(frozen=True)
class WebhookChannel:
    url: str
    timeout: float = 5.0
    name: str = "webhook"

    def send(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(asdict(alert), ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if response.status >= 300:
                raise OSError(f"webhook answered HTTP {response.status}")


@dataclass(frozen=True)
class SmtpChannel:
    config: AlertSettings
    name: str = "smtp"

    def send(self, alert: Alert) -> None:
        c = self.config
        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = c.smtp_sender
        message["To"] = ", ".join(c.smtp_recipients)
        message.set_content(alert.body)
        assert c.smtp_host is not None
        with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout_seconds) as smtp:
            if c.smtp_starttls:
                smtp.starttls()
            if c.smtp_user and c.smtp_password:
                smtp.login(c.smtp_user, c.smtp_password.get_secret_value())
            smtp.send_message(message)


def channels(settings: Settings) -> list[Channel]:
    c = settings.alerts
    found: list[Channel] = []
    if c.webhook_url:
        found.append(WebhookChannel(c.webhook_url, c.timeout_seconds))
    if c.smtp_host and c.smtp_recipients:
        found.append(SmtpChannel(c))
    return found


def notify(alert: Alert, settings: Settings | None = None) -> dict[str, str]:
    """Send `alert` through every configured channel; returns channel -> 'sent' or the error."""
    outcome = {}
    for channel in channels(settings or get_settings()):
        try:
            channel.send(alert)
            outcome[channel.name] = "sent"
        except (OSError, smtplib.SMTPException) as exc:
            log.error("alert through %s failed: %s", channel.name, exc)
            outcome[channel.name] = f"failed: {exc}"
    return outcome
