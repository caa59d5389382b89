"""Prometheus metrics. Counters live in prometheus_client (files per process under `qtsp serve`, see
qtsp/metrics.py); publication gauges (OCSP response age, CRL nextUpdate margin) are read from the store per scrape."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from ..clock import utcnow
from ..services import monitoring
from ..services.context import Sandbox

from ..metrics import (  # re-exported for the web layer
    CLI_DIR as CLI_DIR,
    CRL_GENERATION as CRL_GENERATION,
    HTTP_REQUESTS as HTTP_REQUESTS,
    MULTIPROC_ENV as MULTIPROC_ENV,
    OCSP_REQUESTS as OCSP_REQUESTS,
    REVOCATION_TO_PUBLICATION as REVOCATION_TO_PUBLICATION,
    http_request as http_request,
    ocsp_request as ocsp_request,
)


class _PublicationCollector:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily("qtsp_ocsp_response_age_seconds", "Age of the oldest pre-signed OCSP response, by issuer",
                                labels=["issuer"])
        margin = GaugeMetricFamily("qtsp_crl_next_update_margin_seconds",
                                   "Seconds until the newest CRL's nextUpdate, by issuer", labels=["issuer"])
        ages, margins = monitoring.publication_margins(self.sandbox, utcnow())
        for issuer, seconds in ages.items():
            age.add_metric([issuer], seconds)
        for issuer, seconds in margins.items():
            margin.add_metric([issuer], seconds)
        yield age
        yield margin


class _FilesCollector:
    """The multiprocess files of this server (its workers and scheduler) and of the CLI (``qtsp revoke``)."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        # A file of size 0 is being created by its process (the header follows at once): skip it this time.
        files = [str(f) for d in self.directories for f in sorted(d.glob("*.db")) if f.stat().st_size > 0]
        return MultiProcessCollector.merge(files, accumulate=True)


def render(sandbox: Sandbox) -> bytes:
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:  # under `qtsp serve`: every worker's values, the scheduler's, and the CLI's
        registry.register(_FilesCollector([Path(directory), sandbox.data_dir / CLI_DIR]))
        registry.register(_PublicationCollector(sandbox))
        return generate_latest(registry)
    # One process (a test client, or the WSGI app under a server we do not start): its own registry.
    from prometheus_client import REGISTRY

    extra = CollectorRegistry()
    extra.register(_PublicationCollector(sandbox))
    return generate_latest(REGISTRY) + generate_latest(extra)
