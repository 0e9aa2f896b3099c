"""Outgoing e-mail, off the request path.

`send_mail` only queues; a daemon thread delivers with retries and back-off, so a slow or failing
SMTP server never fails or slows a request. Mail is off when `MAIL_SERVER` is unset.
"""

import logging
import queue
import smtplib
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger(__name__)


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
    max_attempts: int
    retry_delay: float

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
            max_attempts=config["MAIL_MAX_ATTEMPTS"],
            retry_delay=config["MAIL_RETRY_DELAY"],
        )


@dataclass
class _Job:
    settings: SmtpSettings
    message: EmailMessage
    attempts: int = 0
    not_before: float = field(default_factory=time.monotonic)


class Mailer:
    """One delivery thread per process, started on first use."""

    def __init__(self):
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread = None
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def enqueue(self, settings, message):
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="finstack-mailer", daemon=True)
                self._thread.start()
        self._queue.put(_Job(settings, message))

    def wait_idle(self, timeout=None):
        """Block until every queued message is delivered or given up (the CLI calls this before exiting)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self):
        while True:
            job = self._queue.get()
            delay = job.not_before - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._attempt(job)

    def _attempt(self, job):
        job.attempts += 1
        try:
            _deliver(job.settings, job.message)
        except (OSError, smtplib.SMTPException) as exc:
            if job.attempts < job.settings.max_attempts:
                backoff = job.settings.retry_delay * 2 ** (job.attempts - 1)
                log.warning("Mail to %s failed (%s); retry %d in %.1fs", job.message["To"], exc, job.attempts, backoff)
                job.not_before = time.monotonic() + backoff
                self._queue.put(job)
                return
            log.error("Mail to %s given up after %d attempts: %s", job.message["To"], job.attempts, exc)
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()


def _deliver(settings, message):
    smtp_class = smtplib.SMTP_SSL if settings.use_ssl else smtplib.SMTP
    with smtp_class(settings.server, settings.port, timeout=settings.timeout) as smtp:
        if settings.use_tls:
            smtp.starttls()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)


mailer = Mailer()


def mail_enabled():
    return bool(current_app.config.get("MAIL_SERVER"))


def send_mail(to, subject, body):
    """Queue a plain-text message. Call it after commit (see `core.events.after_commit`)."""
    if not mail_enabled():
        return
    settings = SmtpSettings.from_config(current_app.config)
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    mailer.enqueue(settings, message)
