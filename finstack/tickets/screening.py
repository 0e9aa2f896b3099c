"""The content check run on every new ticket (chosen by the TICKET_CONTENT_CHECK setting).

A check is any object with `reasons(title, description) -> list[str]`; an empty list lets the ticket through, else
the ticket is flagged and held for review. A model-backed check can be registered in CHECKS later.
"""

import re

import sqlalchemy as sa
from flask import current_app

from finstack.extensions import db
from finstack.tickets.models import BlockedTerm

REPEATED_CHARACTERS = 10  # the same character this many times in a row ("!!!!!!!!!!", "aaaaaaaaaa")
SHOUTING_MIN_LETTERS = 20  # all caps is judged only on text with at least this many letters…
SHOUTING_SHARE = 0.8  # …of which at least this share are capitals
MAX_LINKS = 3
LINK = re.compile(r"https?://|www\.", re.IGNORECASE)


class Heuristics:
    name = "heuristics"

    def reasons(self, title, description):
        text = f"{title}\n{description}"
        folded = text.casefold()
        found = []
        terms = db.session.scalars(sa.select(BlockedTerm.term).order_by(BlockedTerm.term))
        for term in terms:
            if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", folded):
                found.append(f"blocked term: {term}")
        if re.search(rf"(\S)\1{{{REPEATED_CHARACTERS - 1},}}", text):
            found.append(f"a character repeated {REPEATED_CHARACTERS} or more times")
        letters = [character for character in text if character.isalpha()]
        capitals = sum(character.isupper() for character in letters)
        if len(letters) >= SHOUTING_MIN_LETTERS and capitals >= SHOUTING_SHARE * len(letters):
            found.append("mostly capital letters")
        if len(LINK.findall(text)) > MAX_LINKS:
            found.append(f"more than {MAX_LINKS} links")
        return found


CHECKS = {"heuristics": Heuristics}


def content_check():
    return CHECKS[current_app.config["TICKET_CONTENT_CHECK"]]()
