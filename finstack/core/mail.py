"""Outgoing e-mail over SMTP. Mail is off when `MAIL_SERVER` is unset.

`send_mail` sends at once and raises when the server fails: call it from a job (notification mail is the `mail`
job of `finstack.notifications.service`, retried with back-off by the worker), never on a request's path.
"""

import hashlib
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr

from flask import current_app


@dataclass
class SmtpSettings:
    server: str
    port: int
    use_tls: bool
    use_ssl: bool
    username: str | None
    password: str | None
    sender: str
    timeout: float

    @classmethod
    def from_config(cls, config):
        return cls(
            server=config["MAIL_SERVER"],
            port=config["MAIL_PORT"],
            use_tls=config["MAIL_USE_TLS"],
            use_ssl=config["MAIL_USE_SSL"],
            username=config["MAIL_USERNAME"],
            password=config["MAIL_PASSWORD"],
            sender=config["MAIL_DEFAULT_SENDER"],
            timeout=config["MAIL_TIMEOUT"],
        )


def mail_enabled():
    return bool(current_app.config.get("MAIL_SERVER"))


def stable_message_id(key, sender):
    """A Message-ID that depends only on `key`: every delivery of one job carries the same one, so a receiver can
    drop the duplicate an at-least-once redelivery may bring."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "finstack.local"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def send_mail(to, subject, body, *, key=None):
    """Send a plain-text message now; raises OSError or smtplib.SMTPException when the server fails. With `key`,
    its Message-ID is `stable_message_id(key)`. Does nothing when mail is off."""
    if not mail_enabled():
        return
    settings = SmtpSettings.from_config(current_app.config)
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    if key is not None:
        message["Message-ID"] = stable_message_id(key, settings.sender)
    message.set_content(body)
    smtp_class = smtplib.SMTP_SSL if settings.use_ssl else smtplib.SMTP
    with smtp_class(settings.server, settings.port, timeout=settings.timeout) as smtp:
        if settings.use_tls:
            smtp.starttls()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)
