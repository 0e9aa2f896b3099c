"""Word search over tickets (`GET /api/tickets?q=`) on the search objects of migrations 0014 and 0018: PostgreSQL
`tickets.search_vector` (title, description, resolution; 'english': stemming and stop words) with its GIN index,
SQLite `ticket_search` and its FTS5 index (tokenizer `porter` to match). `kb.py` ranks the same objects by any word
for `helpdesk/ask`; this is the list filter, which wants every word (see finstack.core.fulltext)."""

import re

from finstack.core.fulltext import SearchIndex
from finstack.tickets.models import Ticket

WORD = re.compile(r"\w+")
# Dropped from searched text on both engines (PostgreSQL's 'english' configuration drops these and more).
STOP_WORDS = frozenset(
    WORD.findall(
        "a an and are as at be but by can do does for from how i if in into is it its me my no not of on or our so"
        " that the their then there these they this to was we what when where which who why will with you your"
    )
)

# bm25 weights of the FTS5 columns in declared order: title, description, resolution (migration 0018), as the
# PostgreSQL weights A, D and C.
BM25_WEIGHTS = (10.0, 1.0, 2.0)
INDEX = SearchIndex(Ticket, "english", "ticket_search", "ticket_id", BM25_WEIGHTS, STOP_WORDS)
condition = INDEX.condition
with_relevance = INDEX.with_relevance
