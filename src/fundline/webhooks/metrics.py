"""Prometheus metrics of webhook delivery: attempts by outcome, and the queue (read by the
delivery worker every few seconds)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from fundline.kit.metrics import registry

WEBHOOK_DELIVERIES = Counter(
    "fundline_webhook_deliveries_total",
    "Webhook attempts by outcome: succeeded, retrying (failed, another attempt scheduled), "
    "failed (the last attempt failed), gone (410: subscription disabled), dropped.",
    ["outcome"],
    registry=registry,
)
WEBHOOK_OUTBOX = Gauge(
    "fundline_webhook_outbox_events",
    "Events recorded and not yet fanned out to deliveries.",
    registry=registry,
)
WEBHOOK_PENDING = Gauge(
    "fundline_webhook_queue_depth",
    "Webhook deliveries pending: to be sent, or waiting for a retry.",
    registry=registry,
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "fundline_webhook_oldest_pending_age_seconds",
    "How long the oldest event not yet delivered (or given up) has waited.",
    registry=registry,
)
