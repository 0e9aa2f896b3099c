"""Durable jobs: side effects written as rows in the transaction that causes them, run by a worker at least once.

A domain registers a handler by kind (`@jobs.handler("mail")`, a function taking the ClaimedJob: its payload, key
and attempt number) or a periodic function (`jobs.periodic(kind, interval_setting)`), and enqueues with
`jobs.enqueue(kind, payload, key=…)` inside its own transaction; the job exists once that transaction commits.
"""

from finstack.jobs.service import ClaimedJob, enqueue, enqueue_many, handler, periodic

__all__ = ["ClaimedJob", "enqueue", "enqueue_many", "handler", "periodic"]
