"""Prometheus figures of the delivery queue, added to the service's own /metrics registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hearth_members.notifications.sender import state_of
from servicekit.runtime import ServiceRuntime


class DeliveryCollector(Collector):
    """Backlog by status (as of the sender's last pass) and this process's attempt outcomes.

    The backlog is counted by each sender pass (every tick, and after each wake) rather than
    at scrape time: the kernel's /metrics refreshes only its own figures before a scrape.
    """

    def __init__(self, service: str, runtime: Callable[[], ServiceRuntime | None]) -> None:
        self.service = service
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        """The last backlog snapshot and the outcome counters."""
        runtime = self.runtime()
        if runtime is None:
            return
        state = state_of(runtime)
        if state.backlog is not None:
            backlog = GaugeMetricFamily(
                "hearth_notification_deliveries",
                "Notification deliveries beyond the inbox by status (pending, sending, failed).",
                labels=["service", "status"],
            )
            for status, count in sorted(state.backlog.items()):
                backlog.add_metric([self.service, status], count)
            yield backlog
            age = GaugeMetricFamily(
                "hearth_notification_delivery_oldest_open_age_seconds",
                "Age of the oldest delivery not yet delivered, failed or dropped (0 when none).",
                labels=["service"],
            )
            age.add_metric([self.service], state.oldest_open_age_seconds)
            yield age
        outcomes = CounterMetricFamily(
            "hearth_notification_delivery_attempts",
            "Delivery attempts this process made, by channel and outcome.",
            labels=["service", "channel", "outcome"],
        )
        for (channel, outcome), count in sorted(state.outcomes.items()):
            outcomes.add_metric([self.service, channel, outcome], count)
        yield outcomes
