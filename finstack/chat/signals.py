"""What chat announces to the domains whose conversations it carries, so that chat imports none of their services.

Receivers connect when their module is imported (`tickets.service` imports `tickets.chat`); `create_app` imports
every domain's routes, hence their services.

    message_sent  sender: the app; `conversation`, `message`, `author`: a message just stored (flushed, not yet
                  committed), sent in the sending transaction. Receivers may write in that transaction (and lock
                  rows: the conversation row is locked already) and leave the commit to the sender.
"""

from blinker import Namespace

_signals = Namespace()

message_sent = _signals.signal("message-sent")
