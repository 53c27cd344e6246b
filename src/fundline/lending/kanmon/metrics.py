"""Prometheus metrics of Fundline's calls to Kanmon: calls by operation and outcome, retries,
and the circuit breaker's state."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from fundline.kit.metrics import registry

KANMON_CALLS = Counter(
    "fundline_kanmon_calls_total",
    "Calls to Kanmon by operation and final outcome (retries included in one call): ok, "
    "refused (a 4xx answer), rate_limited, server_error, timeout, connect_error, "
    "network_error, invalid_response, circuit_open (failed at once, not sent).",
    ["operation", "outcome"],
    registry=registry,
)
KANMON_RETRIES = Counter(
    "fundline_kanmon_retries_total",
    "Attempts to Kanmon sent again, by operation and the failure that caused it.",
    ["operation", "reason"],
    registry=registry,
)
KANMON_BREAKER_STATE = Gauge(
    "fundline_kanmon_breaker_state",
    "The Kanmon client's circuit breaker: 0 closed, 1 half-open (one probe allowed), 2 open.",
    registry=registry,
)
KANMON_BREAKER_OPENED = Counter(
    "fundline_kanmon_breaker_opened_total",
    "Times the Kanmon circuit breaker opened (calls then fail at once for a while).",
    registry=registry,
)
