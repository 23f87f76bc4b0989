"""Prometheus metrics: jobs by kind and state (read from the store at scrape time), submissions, and
request latency per route template. Each app owns its registry, so several apps can live in one process."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from api.store import STATUSES, Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _JobsCollector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self):
        family = GaugeMetricFamily("curator_jobs", "Jobs in the store by kind and status", labels=["kind", "status"])
        counts = self.store.counts_by_status()
        for kind in ("curation", "training"):
            for status in STATUSES:
                family.add_metric([kind, status], counts.get((kind, status), 0))
        yield family


class Metrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_JobsCollector(store))
        self.submissions = Counter(
            "curator_job_submissions",
            "Job submissions to Ray by outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "curator_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request, labelled by its route template (not the raw path)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], path, str(status["code"])).observe(time.perf_counter() - start)
