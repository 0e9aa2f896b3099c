"""The "bare Flask" baseline of bench/compare.py: FinStack's task list JSON from one SQL statement, no framework.

    BARE_DATABASE_URL=postgresql://... gunicorn -k eventlet -w 1 --pythonpath bench/peers bare_flask:app

`GET /api/tasks?page=&per_page=` answers what FinStack's `GET /api/tasks` answers a manager (every live task,
newest first): the same items (both users nested, tags, reminders, `is_overdue`) and the same pagination envelope
(the exact total from the maintained counts, `task_counts`, as FinStack reads it for this list, and the keyset
cursor of the next page), from one statement over a psycopg2 connection and `json.dumps`. No authentication, no ORM, no
schema library: what is left of a request is the least any Flask app pays for this page, so the app server's CPU
per request here is the floor FinStack's is compared with (issue 12 item 4: within 3x).

Served like FinStack, by gunicorn's eventlet worker (whose monkey patching makes psycopg2 cooperative); each
concurrent request takes an idle connection or opens one, and connections are kept.
"""

import base64
import contextlib
import hashlib
import json
import math
import os
import queue

import psycopg2
from flask import Flask, Response, request

# FinStack's cursors carry a signature of their sort (finstack.core.pagination): newest first, then id.
SORT_SIGNATURE = hashlib.sha256(b"tasks.date_created:True|tasks.id:True").hexdigest()[:12]
ITEM_COLUMNS = (
    "id",
    "entity_name",
    "task_type",
    "task_time",
    "contact_person_id",
    "note",
    "status",
    "priority",
    "created_by",
    "date_created",
    "updated_at",
    "closed_at",
    "version",
    "project_id",
    "rank",
    "repeat",
    "series_id",
    "occurrence",
)
PAGE_SQL = f"""
SELECT {", ".join("t." + column for column in ITEM_COLUMNS)},
       t.status IN ('open', 'in_progress') AND t.task_time < now() AS is_overdue,
       contact.username, contact.full_name, creator.username, creator.full_name,
       ARRAY(SELECT tag FROM task_tags WHERE task_id = t.id ORDER BY tag) AS tags,
       (SELECT coalesce(json_agg(json_build_object(
                   'before_minutes', r.before_minutes,
                   'at', to_char(r.remind_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
                   'sent_at', to_char(r.sent_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))
               ORDER BY r.remind_at, r.id), '[]')
          FROM task_reminders r WHERE r.task_id = t.id) AS reminders,
       (SELECT coalesce(sum(count), 0) FROM task_counts WHERE dimension = 'all' AND key = '') AS total
  FROM tasks AS t
  LEFT JOIN users AS contact ON contact.id = t.contact_person_id
  JOIN users AS creator ON creator.id = t.created_by
 WHERE t.deleted_at IS NULL
 ORDER BY t.date_created DESC, t.id DESC
 LIMIT %(limit)s OFFSET %(offset)s
"""

app = Flask(__name__)
_idle = queue.LifoQueue()


@contextlib.contextmanager
def connection():
    try:
        conn = _idle.get_nowait()
    except queue.Empty:
        conn = psycopg2.connect(os.environ["BARE_DATABASE_URL"], options="-c timezone=UTC")
        conn.autocommit = True
    try:
        yield conn
    finally:
        _idle.put(conn)


def _cursor(date_created, task_id):
    payload = {"s": SORT_SIGNATURE, "k": [{"dt": date_created.isoformat()}, {"u": task_id}]}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _item(row):
    item = dict(zip(ITEM_COLUMNS, row, strict=False))
    is_overdue, contact_username, contact_name, creator_username, creator_name, tags, reminders = row[
        len(ITEM_COLUMNS) : len(ITEM_COLUMNS) + 7
    ]
    item.update(is_overdue=is_overdue, tags=tags, reminders=reminders)
    item["contact_person"] = (
        None
        if item["contact_person_id"] is None
        else {"id": item["contact_person_id"], "username": contact_username, "full_name": contact_name}
    )
    item["creator"] = {"id": item["created_by"], "username": creator_username, "full_name": creator_name}
    return item


@app.get("/api/tasks")
def list_tasks():
    page = request.args.get("page", 1, type=int)
    per_page = request.args.get("per_page", 20, type=int)
    with connection() as conn, conn.cursor() as cursor:
        cursor.execute(PAGE_SQL, {"limit": per_page + 1, "offset": (page - 1) * per_page})
        rows = cursor.fetchall()
    total = rows[0][-1] if rows else 0
    more, rows = len(rows) > per_page, rows[:per_page]
    body = {
        "items": [_item(row) for row in rows],
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total": total,
            "total_exact": True,
            "pages": math.ceil(total / per_page) if total else 0,
            "next_cursor": _cursor(rows[-1][ITEM_COLUMNS.index("date_created")], rows[-1][0]) if more else None,
        },
    }
    return Response(json.dumps(body, default=lambda value: value.isoformat()), mimetype="application/json")


@app.get("/api/health")
def health():
    return {"status": "ok"}
