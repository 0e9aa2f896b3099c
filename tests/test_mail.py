"""E-mail goes to a real SMTP server (aiosmtpd) through the job worker, after commit, per preference, and survives an
SMTP outage."""

from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from finstack.jobs import worker
from tests.conftest import free_port


@pytest.fixture
def assigner(make_user):
    return make_user(role="manager")


def assign(client, auth_headers, actor, assignee):
    return client.post(
        "/api/tasks",
        json={
            "entity_name": "Acme Ltd",
            "task_type": "Tax Filing",
            "task_time": "2031-01-01T09:00:00Z",
            "contact_person_id": str(assignee.id),
        },
        headers=auth_headers(actor),
    )


def run_worker_once(runner):
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def test_assignment_mails_the_assignee_not_the_actor(smtp_sink, client, runner, auth_headers, assigner, member):
    response = assign(client, auth_headers, assigner, member)
    assert response.status_code == 201
    assert smtp_sink.messages == []  # queued as a job: sent by a worker, never on the request's path
    assert run_worker_once(runner) == "Jobs run: 1\n"
    assert [message["To"] for message in smtp_sink.messages] == [member.email]
    assert "Acme Ltd" in smtp_sink.messages[0]["Subject"]
    assert "Tax Filing" in smtp_sink.messages[0].get_payload()


def test_no_mail_for_a_type_the_user_turned_off(smtp_sink, client, runner, auth_headers, assigner, member):
    turned_off = client.put("/api/users/me/preferences", json={"task_assigned": False}, headers=auth_headers(member))
    assert turned_off.status_code == 200 and turned_off.json["task_assigned"] is False
    assert assign(client, auth_headers, assigner, member).status_code == 201
    assert run_worker_once(runner) == "Jobs run: 0\n"
    assert smtp_sink.messages == []


def test_no_mail_when_the_request_fails(smtp_sink, client, runner, auth_headers, assigner, member):
    response = client.post(
        "/api/tasks",
        json={"entity_name": "Acme", "task_type": "Call", "contact_person_id": str(member.id)},
        headers=auth_headers(assigner),
    )
    assert response.status_code == 400
    assert run_worker_once(runner) == "Jobs run: 0\n"
    assert smtp_sink.messages == []


def test_smtp_down_request_succeeds_and_mail_is_retried(app_config, make_user, auth_headers):
    port = free_port()  # nothing listens here yet: every delivery attempt fails
    app_config.update(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_RETRY_DELAY=0.2, MAIL_MAX_ATTEMPTS=8
    )
    from finstack import create_app

    app = create_app(app_config)
    with app.app_context():
        actor, assignee = make_user(role="manager"), make_user()
        address = assignee.email
        response = assign(app.test_client(), auth_headers, actor, assignee)
        assert response.status_code == 201
        assert worker.run_due() == 1  # the first attempt fails; the job waits for its retry

        received = []

        class Sink:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
                received.append(message_from_bytes(envelope.content))
                return "250 OK"

        controller = Controller(Sink(), hostname="127.0.0.1", port=port)
        controller.start()  # the server comes back; the queued mail is retried and delivered
        try:
            assert worker.drain(30)
        finally:
            controller.stop()
    assert [message["To"] for message in received] == [address]
