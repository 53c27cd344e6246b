"""The process's Prometheus registry: every metric registers here, and ``/metrics`` (or
``fundline worker --metrics-port``) serves it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

registry = CollectorRegistry()
