"""What the helpdesk's sweeps announce, so that they import neither the socket events nor anything above them.

Receivers connect when their module is imported; `create_app` imports the tickets routes, hence the service and
`finstack/tickets/events.py`, so the web app, the `flask` CLI and the tests all have them connected.

    breaches_recorded  sender: the app; `ticket_ids`: tickets whose SLA breach the sweep just recorded, sent in the
                       sweep's transaction (receivers act after it commits).
"""

from blinker import Namespace

_signals = Namespace()

breaches_recorded = _signals.signal("ticket-breaches-recorded")
