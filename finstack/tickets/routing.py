"""Choosing a ticket's department (a router, picked by the TICKET_ROUTER setting) and its agent (by load).

A router is any object with `route(ticket) -> Decision`; a model-backed one can be registered in ROUTERS later.
"""

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from finstack.extensions import db
from finstack.tickets.models import ACTIVE_STATUSES, DepartmentAgent, RoutingRule, Ticket
from finstack.users.models import User


@dataclass
class Decision:
    department_id: object  # None: no rule matched, the ticket goes to triage
    reason: str
    rule_id: object = None
    matched: list = field(default_factory=list)


def _mentions(text, phrase):
    """Whether `phrase` occurs in `text` as whole words (both already case-folded)."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


class KeywordRouter:
    """Scores every rule: one point per keyword or phrase found as whole words in the title or description, two
    when the rule's category is the ticket's. The best score wins; ties go to the higher rule priority, then to the
    older rule. A rule scoring nothing does not match."""

    name = "keywords"

    def route(self, ticket):
        text = f"{ticket.title}\n{ticket.description}".casefold()
        category = (ticket.category or "").casefold()
        best = None
        rules = db.session.scalars(sa.select(RoutingRule).order_by(RoutingRule.created_at, RoutingRule.id))
        for rule in rules:
            matched = [keyword for keyword in rule.keywords if _mentions(text, keyword)]
            category_matches = bool(rule.category) and rule.category.casefold() == category
            score = len(matched) + (2 if category_matches else 0)
            if score and (best is None or (score, rule.priority) > (best[0], best[1].priority)):
                best = (score, rule, matched, category_matches)
        if best is None:
            return Decision(None, "No routing rule matched")
        score, rule, matched, category_matches = best
        found = [f"'{keyword}'" for keyword in matched] + ([f"category '{rule.category}'"] if category_matches else [])
        return Decision(
            rule.department_id,
            f"Rule {rule.id} (priority {rule.priority}) matched {', '.join(found)}",
            rule_id=rule.id,
            matched=matched,
        )


ROUTERS = {"keywords": KeywordRouter}


def router():
    return ROUTERS[current_app.config["TICKET_ROUTER"]]()


def least_loaded_agent(department_id):
    """The department's active agent (leads included) with the fewest active tickets, counted in SQL; among
    equals, the one assigned least recently (never assigned first), then by user id. None when it has no agent.

    The caller locks the department's row first, so concurrent routings take turns."""
    load = (
        sa.select(Ticket.assignee_id, sa.func.count().label("active"))
        .where(Ticket.department_id == department_id, Ticket.status.in_(ACTIVE_STATUSES))
        .group_by(Ticket.assignee_id)
        .subquery()
    )
    active = sa.func.coalesce(load.c.active, 0)
    return db.session.execute(
        sa.select(DepartmentAgent, active)
        .join(User, User.id == DepartmentAgent.user_id)
        .outerjoin(load, load.c.assignee_id == DepartmentAgent.user_id)
        .where(DepartmentAgent.department_id == department_id, User.is_active.is_(True))
        .order_by(active, DepartmentAgent.last_assigned_at.asc().nulls_first(), DepartmentAgent.user_id)
        .limit(1)
    ).first()
