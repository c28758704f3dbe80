"""Request counters and latency histograms in the Prometheus text format.

Labels use the route template (``/api/v1/workspaces/{workspace_id}/items``), never the raw
path, so the number of series stays bounded whatever clients send.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self.gauges: dict[str, float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            buckets = self._buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            buckets[bisect_left(BUCKETS, seconds)] += 1
            self._sums[key] += seconds
            self._counts[key] += 1

    def render(self) -> str:
        lines = [
            "# HELP workbench_http_requests_total HTTP requests by method, route and status.",
            "# TYPE workbench_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), count in sorted(self._requests.items()):
                lines.append(
                    f'workbench_http_requests_total{{method="{method}",route="{_escape(route)}",'
                    f'status="{status}"}} {count}'
                )
            lines += [
                "# HELP workbench_http_request_duration_seconds HTTP request latency.",
                "# TYPE workbench_http_request_duration_seconds histogram",
            ]
            for (method, route), buckets in sorted(self._buckets.items()):
                labels = f'method="{method}",route="{_escape(route)}"'
                cumulative = 0
                for bound, count in zip(BUCKETS, buckets, strict=False):
                    cumulative += count
                    lines.append(
                        f'workbench_http_request_duration_seconds_bucket{{{labels},le="{bound}"}}'
                        f" {cumulative}"
                    )
                cumulative += buckets[-1]
                lines.append(
                    f'workbench_http_request_duration_seconds_bucket{{{labels},le="+Inf"}}'
                    f" {cumulative}"
                )
                lines.append(
                    f"workbench_http_request_duration_seconds_sum{{{labels}}} "
                    f"{self._sums[(method, route)]:.6f}"
                )
                lines.append(
                    f"workbench_http_request_duration_seconds_count{{{labels}}} "
                    f"{self._counts[(method, route)]}"
                )
            for name, value in sorted(self.gauges.items()):
                lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"
