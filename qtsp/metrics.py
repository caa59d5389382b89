"""Prometheus counters and histograms, importable by services without pulling in Flask.

Under `qtsp serve` prometheus_client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR), so
every worker's counts add up at /metrics.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

OCSP_REQUESTS = Counter("qtsp_ocsp_requests_total", "OCSP requests by method and outcome", ["method", "outcome"])
HTTP_REQUESTS = Counter("qtsp_http_requests_total", "HTTP requests by endpoint and outcome", ["endpoint", "outcome"])
REVOCATION_TO_PUBLICATION = Histogram(
    "qtsp_revocation_to_publication_seconds",
    "From receiving a revocation to the re-signed OCSP response being committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
NCA_PUBLICATION = Histogram(
    "qtsp_nca_request_to_publication_seconds",
    "From receiving an NCA request to its revocations being published in OCSP (limit: 24 h, EN 319 411-1)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 3600, 86400),
)
JOB_FAILURES = Counter("qtsp_job_failures_total", "Scheduled job runs that failed (they retry with backoff)", ["job"])
CRL_GENERATION = Histogram("qtsp_crl_generation_seconds", "Time to build, sign and store one CRL",
                           buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))


_ocsp_children: dict[tuple[str, str], object] = {}


def ocsp_request(method: str, outcome: str) -> None:
    child = _ocsp_children.get((method, outcome))
    if child is None:
        child = _ocsp_children[(method, outcome)] = OCSP_REQUESTS.labels(method, outcome)
    child.inc()  # type: ignore[attr-defined]


def http_request(endpoint: str, outcome: int | str) -> None:
    HTTP_REQUESTS.labels(endpoint, str(outcome)).inc()


