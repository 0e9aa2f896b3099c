"""Shared building blocks: database types, time, schemas, pagination, permissions, health."""
