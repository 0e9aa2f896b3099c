from flask_jwt_extended import current_user

from finstack.core.schemas import page_of
from finstack.notifications import bp, service
from finstack.notifications.schemas import (
    EmailPreferences,
    EmailPreferencesOut,
    NotificationOut,
    NotificationQuery,
    NotificationSettingsIn,
    NotificationSettingsOut,
    ReadAllOut,
    UnreadCountOut,
)


@bp.get("/notifications")
@bp.auth_required()
@bp.arguments(NotificationQuery, location="query")
@bp.response(200, page_of(NotificationOut))
def list_notifications(query):
    """Your notifications, newest first; `since=<id>` returns the ones after it, oldest first."""
    return service.list_notifications(current_user, **query)


@bp.get("/notifications/unread-count")
@bp.auth_required()
@bp.response(200, UnreadCountOut)
def unread_count():
    return {"count": service.unread_count(current_user)}


@bp.post("/notifications/<uuid:notification_id>/read")
@bp.auth_required()
@bp.response(200, NotificationOut)
def mark_read(notification_id):
    return service.mark_read(current_user, notification_id)


@bp.post("/notifications/read-all")
@bp.auth_required()
@bp.response(200, ReadAllOut)
def mark_all_read():
    return {"updated": service.mark_all_read(current_user)}


@bp.get("/users/me/preferences")
@bp.auth_required()
@bp.response(200, EmailPreferencesOut)
def get_preferences():
    """Which notification types also reach you by e-mail (all, unless you turn them off)."""
    return service.email_preferences(current_user)


@bp.put("/users/me/preferences")
@bp.auth_required()
@bp.arguments(EmailPreferences)
@bp.response(200, EmailPreferencesOut)
def set_preferences(choices):
    return service.set_email_preferences(current_user, choices)


@bp.get("/users/me/notification-settings")
@bp.auth_required()
@bp.response(200, NotificationSettingsOut)
def get_notification_settings():
    """How your e-mail is delivered (immediate, hourly or daily digest, off) and whether group chats notify you."""
    return service.notification_settings(current_user)


@bp.put("/users/me/notification-settings")
@bp.auth_required()
@bp.arguments(NotificationSettingsIn)
@bp.response(200, NotificationSettingsOut)
def set_notification_settings(choices):
    return service.set_notification_settings(current_user, choices)
