"""Events (the transactional outbox) and, later, their delivery to webhook subscriptions."""
