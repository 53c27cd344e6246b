"""Prometheus metrics: request counts and latencies by route template and status; webhook
deliveries by outcome and the delivery queue."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry()

REQUESTS = Counter(
    "fundline_http_requests_total",
    "HTTP requests handled, by method, route template and status.",
    ["method", "route", "status"],
    registry=registry,
)
LATENCY = Histogram(
    "fundline_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    registry=registry,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

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


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
