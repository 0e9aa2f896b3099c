import sqlalchemy as sa
from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from finstack.core.schemas import (
    AwareDateTime,
    BaseSchema,
    NotBlank,
    PageQuery,
    PlainDump,
    StrictBoolean,
    WholeNumber,
)
from finstack.core.sql import iso_datetime, json_object
from finstack.tasks.schemas import RELEVANCE, SearchText
from finstack.tickets import sla
from finstack.tickets.models import (
    AGENT_ROLES,
    MISUSE_ACTIONS,
    MISUSE_PATTERNS,
    STATUSES,
    URGENCIES,
    reference_in_sql,
)
from finstack.users.schemas import UserBrief

NAME = validate.And(validate.Length(min=1, max=100), NotBlank())
DESCRIPTION = validate.Length(max=2000)
CATEGORY = validate.And(validate.Length(min=1, max=50), NotBlank())
TITLE = validate.And(validate.Length(min=5, max=200), NotBlank())
TICKET_DESCRIPTION = validate.And(validate.Length(min=10, max=5000), NotBlank())
RESOLUTION = validate.And(validate.Length(min=1, max=5000), NotBlank())
KEYWORD = validate.And(validate.Length(min=1, max=100), NotBlank())
MAX_KEYWORDS = 50
TICKET_STATUS = validate.OneOf(STATUSES)


class Stripped(BaseSchema):
    """Text fields are stored without surrounding whitespace (length is checked on what was sent)."""

    @post_load
    def _strip(self, data, **kwargs):
        return {key: value.strip() if isinstance(value, str) else value for key, value in data.items()}


class DepartmentOut(BaseSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    system_key = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "`it`, `hr`, `triage` for the departments every install has; else null"},
    )
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(required=True)


class DepartmentCreate(Stripped):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION, load_default=None)


class DepartmentUpdate(Stripped):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one field to change.")


class DepartmentBrief(PlainDump, BaseSchema):
    id = fields.UUID()
    name = fields.String()


class AgentOut(BaseSchema):
    user_id = fields.UUID(required=True)
    user = fields.Nested(UserBrief, required=True)
    role = fields.String(required=True)
    added_at = AwareDateTime(required=True)
    last_assigned_at = AwareDateTime(required=True, allow_none=True)


class AgentCreate(BaseSchema):
    user_id = fields.UUID(required=True)
    role = fields.String(validate=validate.OneOf(AGENT_ROLES), load_default="agent")


class Keywords(fields.List):
    """Keywords and phrases, matched as whole words whatever their case: stored case-folded, without duplicates."""

    def __init__(self, **kwargs):
        super().__init__(fields.String(validate=KEYWORD), validate=validate.Length(max=MAX_KEYWORDS), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        keywords = super()._deserialize(value, attr, data, **kwargs)
        return list(dict.fromkeys(" ".join(keyword.casefold().split()) for keyword in keywords))


class RoutingRuleOut(BaseSchema):
    id = fields.UUID(required=True)
    department_id = fields.UUID(required=True)
    keywords = fields.List(fields.String(), required=True)
    category = fields.String(required=True, allow_none=True)
    priority = fields.Integer(required=True, metadata={"description": "Breaks ties between equally good matches"})
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(required=True)


class RoutingRuleCreate(Stripped):
    department_id = fields.UUID(required=True)
    keywords = Keywords(load_default=list)
    category = fields.String(allow_none=True, validate=CATEGORY, load_default=None)
    priority = WholeNumber(load_default=0, validate=validate.Range(min=-1000, max=1000))

    @validates_schema
    def _keywords_or_category(self, data, **kwargs):
        if not data.get("keywords") and not data.get("category"):
            raise ValidationError("A rule needs keywords or a category.")


class RoutingRuleUpdate(Stripped):
    department_id = fields.UUID()
    keywords = Keywords()
    category = fields.String(allow_none=True, validate=CATEGORY)
    priority = WholeNumber(validate=validate.Range(min=-1000, max=1000))

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one field to change.")


class RoutingRuleQuery(PageQuery):
    department_id = fields.UUID()


class BlockedTermOut(BaseSchema):
    id = fields.UUID(required=True)
    term = fields.String(required=True)
    created_by = fields.UUID(required=True, allow_none=True)
    created_at = AwareDateTime(required=True)


class BlockedTermCreate(BaseSchema):
    term = fields.String(required=True, validate=KEYWORD)

    @post_load
    def _fold(self, data, **kwargs):
        return {"term": " ".join(data["term"].casefold().split())}


class TicketSlaOut(BaseSchema):
    first_response_due_at = AwareDateTime(required=True, allow_none=True, metadata={"description": "Null while held"})
    first_responded_at = AwareDateTime(required=True, allow_none=True)
    first_response_breached = fields.Boolean(required=True)
    first_response_breached_at = AwareDateTime(
        required=True, allow_none=True, metadata={"description": "When the breach was recorded (and escalated)"}
    )
    resolution_due_at = AwareDateTime(
        required=True, allow_none=True, metadata={"description": "Pushed by the time spent waiting on the requester"}
    )
    resolution_breached = fields.Boolean(required=True)
    resolution_breached_at = AwareDateTime(required=True, allow_none=True)
    paused_at = AwareDateTime(
        required=True, allow_none=True, metadata={"description": "Since when the resolution clock is paused"}
    )


class SlaState(fields.Nested):
    """The ticket's SLA state, computed at the time of the response."""

    def get_value(self, obj, attr, accessor=None, default=None):
        return sla.state(obj)


class TicketOut(PlainDump, BaseSchema):
    id = fields.UUID(required=True)
    number = fields.String(required=True, attribute="reference", metadata={"description": "Such as TKT-000123"})
    title = fields.String(required=True)
    description = fields.String(required=True)
    urgency = fields.String(required=True)
    category = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    requester = fields.Nested(UserBrief, required=True)
    department = fields.Nested(DepartmentBrief, required=True, allow_none=True)
    assignee = fields.Nested(UserBrief, required=True, allow_none=True)
    routing = fields.Dict(
        required=True,
        allow_none=True,
        attribute="visible_routing",
        metadata={
            "description": "For the department's agents and admins (null for others): `department` and `assignee`"
            " say why, with `rule_id`, `matched` (keywords), `router`"
        },
    )
    misuse_flag = fields.Boolean(required=True)
    misuse_reasons = fields.List(
        fields.String(),
        required=True,
        allow_none=True,
        attribute="visible_misuse_reasons",
        metadata={"description": "What the content check found; for the department's agents and admins"},
    )
    resolution = fields.String(
        required=True, allow_none=True, metadata={"description": "What solved it (given when resolved)"}
    )
    feedback_rating = fields.Integer(required=True, allow_none=True)
    feedback_comment = fields.String(required=True, allow_none=True)
    feedback_at = AwareDateTime(required=True, allow_none=True)
    resolved_at = AwareDateTime(required=True, allow_none=True)
    closed_at = AwareDateTime(required=True, allow_none=True)
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(required=True)
    sla = SlaState(TicketSlaOut, required=True)
    conversation_id = fields.UUID(
        required=True,
        attribute="conversation.id",
        metadata={"description": "The ticket's chat: `GET /api/tickets/<id>/conversation`, then the chat API"},
    )


# The TicketOut fields only the department's staff (and admins) see: the routing decision and the content check's
# reasons. Each dumps the ticket's `visible_<name>`, which `show` sets.
STAFF_ONLY = ("routing", "misuse_reasons")


def show(ticket, *, staff):
    """Make `ticket` dump (TicketOut) as its department's staff see it, or (`staff=False`) as everyone else does.
    Returns the ticket."""
    for name in STAFF_ONLY:
        setattr(ticket, f"visible_{name}", getattr(ticket, name) if staff else None)
    return ticket


# The TicketOut fields read from the ticket's column of the same name (the others are set by `staff_row`).
_COLUMNS = [
    name
    for name, field in TicketOut._declared_fields.items()
    if field.attribute is None and not isinstance(field, fields.Nested)
]


def staff_row(ticket):
    """`ticket` as a plain dict that TicketOut dumps as it dumps `show(ticket, staff=True)` (`PlainDump`: the
    events of many tickets at once are not dumped field by field by marshmallow). The ticket is left as it is."""
    row = {name: getattr(ticket, name) for name in _COLUMNS}
    row.update(
        reference=ticket.reference,
        requester=_brief(ticket.requester),
        department=None if ticket.department is None else {"id": ticket.department.id, "name": ticket.department.name},
        assignee=_brief(ticket.assignee),
        visible_routing=ticket.routing,
        visible_misuse_reasons=ticket.misuse_reasons,
        sla=sla.state(ticket),
        conversation=ticket.conversation,
    )
    return row


def _brief(user):
    return None if user is None else {"id": user.id, "username": user.username, "full_name": user.full_name}


def as_seen_by_others(staff_view):
    """A ticket dumped as staff see it (`show(ticket, staff=True)`), as everyone else sees it: one dump, two views."""
    return {**staff_view, **dict.fromkeys(STAFF_ONLY)}


class TicketCreate(Stripped):
    title = fields.String(required=True, validate=TITLE)
    description = fields.String(required=True, validate=TICKET_DESCRIPTION)
    urgency = fields.String(required=True, validate=validate.OneOf(URGENCIES))
    category = fields.String(allow_none=True, validate=CATEGORY, load_default=None)


class TicketUpdate(Stripped):
    title = fields.String(validate=TITLE)
    description = fields.String(validate=TICKET_DESCRIPTION)
    urgency = fields.String(validate=validate.OneOf(URGENCIES))

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one field to change.")


class TicketListQuery(PageQuery):
    status = fields.String(validate=TICKET_STATUS, metadata={"description": "`held`: the review queue (admins)"})
    department_id = fields.UUID()
    assignee_id = fields.UUID()
    urgency = fields.String(validate=validate.OneOf(URGENCIES))
    mine = fields.Boolean(load_default=False, metadata={"description": "Only the tickets I asked for"})
    breached = fields.Boolean(
        metadata={"description": "Tickets that breached an SLA target (recorded or live), or (`false`) did not"}
    )
    q = SearchText(
        metadata={
            "description": "Words searched in title, description and resolution (stemmed: `printers` finds"
            " `printer`): every word must match, the last one also as a prefix; operators and quotes are plain"
            " text. A ticket number (`TKT-000123` or `123`) also finds that ticket"
        }
    )
    sort_by = fields.String(
        validate=validate.OneOf(("created_at", "updated_at", "number", "urgency", "status", RELEVANCE)),
        load_default="created_at",
        metadata={"description": "`relevance` (best match first with the default `desc`) only together with `q`"},
    )
    sort_order = fields.String(validate=validate.OneOf(("asc", "desc")), load_default="desc")

    @validates_schema
    def _relevance_needs_words(self, data, **kwargs):
        if data.get("sort_by") == RELEVANCE and not data.get("q"):
            raise ValidationError("sort_by=relevance needs q.", "sort_by")


class TicketStatusChange(Stripped):
    status = fields.String(required=True, validate=TICKET_STATUS)
    resolution = fields.String(
        validate=RESOLUTION,
        metadata={
            "description": "Only with `resolved`: what solved it, shown on the ticket and used as its answer by"
            " `helpdesk/ask` and suggestions. Given again on a resolved ticket, it replaces the text"
        },
    )

    @validates_schema
    def _resolution_when_resolved(self, data, **kwargs):
        if "resolution" in data and data.get("status") != "resolved":
            raise ValidationError("A resolution is given only with the status resolved.", "resolution")


class TicketAssign(BaseSchema):
    assignee_id = fields.UUID(required=True)


class TicketReroute(BaseSchema):
    department_id = fields.UUID(required=True)


class FeedbackIn(BaseSchema):
    rating = WholeNumber(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(allow_none=True, validate=validate.Length(max=2000), load_default=None)


# --- Misuse reports ------------------------------------------------------------------------------------------------


class MisuseReportOut(BaseSchema):
    id = fields.UUID(required=True)
    user = fields.Nested(UserBrief, required=True)
    day = fields.Date(required=True, metadata={"description": "The UTC day of the sweep that found it"})
    window_hours = fields.Integer(required=True)
    ticket_count = fields.Integer(required=True, metadata={"description": "Tickets the user filed in the window"})
    patterns = fields.List(fields.String(), required=True, metadata={"description": "`, `".join(MISUSE_PATTERNS)})
    evidence = fields.Dict(
        required=True, metadata={"description": "Per pattern found, the ticket numbers behind it (and the threshold)"}
    )
    reviewed = fields.Boolean(required=True)
    reviewed_by = fields.Nested(UserBrief, required=True, allow_none=True, attribute="reviewer")
    reviewed_at = AwareDateTime(required=True, allow_none=True)
    action = fields.String(required=True, allow_none=True)
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(required=True)


class MisuseReportQuery(PageQuery):
    reviewed = fields.Boolean()
    user_id = fields.UUID()
    pattern = fields.String(validate=validate.OneOf(MISUSE_PATTERNS))
    action = fields.String(validate=validate.OneOf(MISUSE_ACTIONS))
    day_from = fields.Date()
    day_to = fields.Date()


class MisuseReview(BaseSchema):
    reviewed = StrictBoolean()
    action = fields.String(
        validate=validate.OneOf(MISUSE_ACTIONS),
        metadata={"description": "Once per report: `warn` notifies the user, `suspend` deactivates the account"},
    )

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not data:
            raise ValidationError("Give `reviewed`, `action` or both.")


def views_in_sql(ticket, requester, department, assignee, conversation, now):
    """PostgreSQL: `(staff view, everyone else's view)` of `ticket` as JSON built by the database, what
    `TicketOut().dump(staff_row(ticket))` and `as_seen_by_others` of it give (the SLA state at `now`), for the many
    tickets of a sweep's events. The arguments are the entities of a SELECT joining the ticket's requester and, outer,
    its department, assignee and conversation. A test compares the two for tickets in every state."""

    def brief(user):
        return sa.case(
            (user.id.is_(None), sa.null()),
            else_=json_object([("id", user.id), ("username", user.username), ("full_name", user.full_name)]),
        )

    def breached(kind):
        return sa.or_(getattr(ticket, f"{kind}_breached_at").is_not(None), sla.overdue_clause(ticket, kind, now))

    state = json_object(
        [
            ("first_response_due_at", iso_datetime(ticket.first_response_due_at)),
            ("first_responded_at", iso_datetime(ticket.first_responded_at)),
            ("first_response_breached", breached("first_response")),
            ("first_response_breached_at", iso_datetime(ticket.first_response_breached_at)),
            ("resolution_due_at", iso_datetime(ticket.resolution_due_at)),
            ("resolution_breached", breached("resolution")),
            ("resolution_breached_at", iso_datetime(ticket.resolution_breached_at)),
            ("paused_at", iso_datetime(ticket.sla_paused_at)),
        ]
    )

    brief_department = sa.case(
        (department.id.is_(None), sa.null()), else_=json_object([("id", department.id), ("name", department.name)])
    )

    def view(staff):
        before = [
            ("id", ticket.id),
            ("number", reference_in_sql(ticket.number)),
            ("title", ticket.title),
            ("description", ticket.description),
            ("urgency", ticket.urgency),
            ("category", ticket.category),
            ("status", ticket.status),
            ("requester", brief(requester)),
            ("department", brief_department),
            ("assignee", brief(assignee)),
            ("routing", ticket.routing if staff else sa.null()),
            ("misuse_flag", ticket.misuse_flag),
            ("misuse_reasons", ticket.misuse_reasons if staff else sa.null()),
            ("resolution", ticket.resolution),
            ("feedback_rating", ticket.feedback_rating),
            ("feedback_comment", ticket.feedback_comment),
            ("feedback_at", iso_datetime(ticket.feedback_at)),
            ("resolved_at", iso_datetime(ticket.resolved_at)),
            ("closed_at", iso_datetime(ticket.closed_at)),
            ("created_at", iso_datetime(ticket.created_at)),
            ("updated_at", iso_datetime(ticket.updated_at)),
            ("sla", state),
        ]
        # TicketOut leaves `conversation_id` out for a ticket without a conversation.
        return sa.case(
            (conversation.id.is_(None), json_object(before)),
            else_=json_object([*before, ("conversation_id", conversation.id)]),
        )

    return view(staff=True), view(staff=False)
