"""The bulk writes the sweeps share: `core.sql.insert_rows` (one JSON parameter on PostgreSQL) stores what an ORM
insert would, and the event-log counters' upsert numbers each user's events on from their last seq."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from finstack.core import event_log, events
from finstack.core.event_log import UserEvent, UserEventCounter
from finstack.core.sql import insert_rows
from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.notifications.schemas import NotificationOut
from finstack.notifications.service import Draft, notify, notify_from, notify_sweep


def test_insert_rows_stores_uuids_times_text_and_json_as_given(app, member, admin):
    paris = timezone(timedelta(hours=1))
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": user.id,
            "type": "task_overdue",
            "title": f"Tâche en retard {number} — “quoted” \\ back\\slash",
            "message": "line one\nline two 日本",
            "task_id": None,
            "ticket_id": None,
            "actor_id": admin.id if number else None,
            "is_read": bool(number),
            "count": number + 1,
            "created_at": datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=paris),
            "read_at": None,
        }
        for number, user in enumerate([member, admin])
    ]
    insert_rows(Notification.__table__, rows)
    db.session.commit()
    stored = {row.id: row for row in db.session.scalars(sa.select(Notification))}
    assert set(stored) == {row["id"] for row in rows}
    for row in rows:
        notification = stored[row["id"]]
        for key, value in row.items():
            assert getattr(notification, key) == value, key
        assert notification.created_at == datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)

    payload = {"title": "Tâche “1”", "nested": {"ids": [str(member.id)], "n": 3, "ok": True, "none": None}}
    delivered = event_log.record([("notification", payload, {member.id, admin.id}, None)])
    db.session.commit()
    events = db.session.scalars(sa.select(UserEvent).order_by(UserEvent.user_id)).all()
    assert [event.payload for event in events] == [payload, payload]
    assert sorted(delivered[0]) == sorted((event.user_id, event.seq) for event in events)


def test_event_log_counters_continue_from_each_users_last_seq(app, member, admin):
    first = event_log.record([("a", {}, {member.id}, None), ("b", {}, {member.id, admin.id}, None)])
    db.session.commit()
    assert first == [[(member.id, 1)], sorted([(member.id, 2), (admin.id, 1)])]
    second = event_log.record([("c", {}, {admin.id}, None), ("d", {}, {admin.id, member.id}, None)])
    db.session.commit()
    assert second == [[(admin.id, 2)], sorted([(admin.id, 3), (member.id, 3)])]
    counters = dict(db.session.execute(sa.select(UserEventCounter.user_id, UserEventCounter.last_seq)).all())
    assert counters == {member.id: 3, admin.id: 3}


def test_notify_from_and_notify_sweep_store_and_push_what_notify_does(app, member, admin, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("notify_from is the PostgreSQL path")
    pushed = []
    monkeypatch.setattr(events, "deliver", lambda event, payload, seqs, rooms: pushed.append((event, payload, seqs)))
    title, message = "Tâche “1” \\ back\\slash", "line one\nline two 日本 " + "x" * 1200
    recipients = [member.id, admin.id, member.id]
    drafts = [Draft(user_id, "task_reminder", title, message) for user_id in recipients]
    notify(drafts)
    db.session.commit()
    by_python = _stored_and_pushed(pushed)
    for other_path in (notify_sweep, _notify_from_select):
        pushed.clear()
        db.session.execute(sa.delete(Notification))
        other_path(drafts)
        db.session.commit()
        assert _stored_and_pushed(pushed) == by_python


def _notify_from_select(drafts):
    union = sa.union_all(
        *(
            sa.select(
                sa.literal(draft.user_id, sa.Uuid).label("user_id"),
                sa.literal(draft.type).label("type"),
                sa.literal(draft.title).label("title"),
                sa.literal(draft.message).label("message"),
                sa.cast(sa.null(), sa.Uuid).label("task_id"),
                sa.cast(sa.null(), sa.Uuid).label("ticket_id"),
            )
            for draft in drafts
        )
    )
    assert notify_from(sa.select(union.subquery())) == []


def _stored_and_pushed(pushed):
    """What a notify path left, without the ids and times that differ between runs; checks that each event-log row
    and each push carry the notification's payload, and that each user's pushes go in seq order."""
    notifications = {row.id: row for row in db.session.scalars(sa.select(Notification))}
    logged = db.session.scalars(sa.select(UserEvent).where(UserEvent.event == "notification")).all()
    db.session.execute(sa.delete(UserEvent))
    db.session.commit()
    assert len(logged) == len(notifications) == len(pushed)
    pushes = {(seqs[0][0], seqs[0][1]): payload for _, payload, seqs in pushed}
    for user_id in {seqs[0][0] for _, _, seqs in pushed}:
        in_push_order = [seqs[0][1] for _, _, seqs in pushed if seqs[0][0] == user_id]
        assert in_push_order == sorted(in_push_order)
    shown = []
    for event in logged:
        notification = notifications[uuid.UUID(event.payload["id"])]
        assert event.payload == NotificationOut().dump(notification)
        assert pushes[(str(event.user_id), event.seq)] == event.payload
        shown.append({**event.payload, "id": None, "created_at": None, "user_id": notification.user_id})
    return sorted(shown, key=lambda payload: str(payload["user_id"]))
