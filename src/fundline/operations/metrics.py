"""Prometheus metrics of the HTTP server: request counts and latencies by route template and
status. Every metric is in ``kit.metrics.registry``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from fundline.kit.metrics import registry

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


# Each (method, route template, status) series, found once: ``labels`` checks and locks on
# every call. Route templates are the app's own (or "unmatched"), so the series are few.
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = (
            REQUESTS.labels(method, route, str(status)),
            LATENCY.labels(method, route),
        )
    series[0].inc()
    series[1].observe(seconds)
