"""Webhooks: admins register URLs for events; each matching event becomes a signed, durable, retried delivery."""

from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("webhooks", __name__, url_prefix="/api/webhooks", description="Outgoing webhooks (admins)")

from finstack.webhooks import routes  # noqa: E402,F401 - routes attach themselves to bp
from finstack.webhooks.service import publish, publish_many  # noqa: E402

__all__ = ["bp", "publish", "publish_many"]
