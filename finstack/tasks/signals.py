"""What the task domain announces to the domains hanging off tasks (comments, attachments, chat), so that the task
service imports none of them.

Receivers connect when their service module is imported; `create_app` imports every domain's routes, hence its
service, so the web app, the `flask` CLI and the tests all have them connected.

    tasks_purged  sender: the app; `task_ids`: tasks about to be deleted for good (for `core.sql.in_values`: a list,
                  or a SELECT of them on PostgreSQL), sent in the deleting transaction before their rows go.
                  Receivers delete what they keep for those tasks in that same transaction (files: after it
                  commits) and leave the commit to the sender.
"""

from blinker import Namespace

_signals = Namespace()

tasks_purged = _signals.signal("tasks-purged")
