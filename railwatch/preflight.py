"""What every run needs, checked before any work starts: the AOI files, the catalog sources,
the counts database and the store. Each problem is one line that says what to fix."""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_chain, wait_fixed

from railwatch.adapters.store import open_store
from railwatch.errors import ConfigError, StorageError
from railwatch.settings import Settings, get_settings


def check_store(settings: Settings) -> None:
    """A store that cannot be used fails now (missing bucket, refused keys: at once; unreachable
    or erring: after the tasks' retry delays)."""
    delays = settings.task_retry_delays_s
    Retrying(retry=retry_if_exception_type(StorageError), reraise=True,
             wait=wait_chain(*(wait_fixed(d) for d in delays)) if delays else wait_fixed(0),
             stop=stop_after_attempt(len(delays) + 1))(open_store(settings.store_url).check)


def check_sqlite_writable(url: str) -> None:
    """A SQLite counts file this process may not write fails now, not at the first count."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"the counts database {path} is read-only; make it writable or point "
                          "RAILWATCH_DATABASE_URL elsewhere")


def check_reachable(source: str) -> None:
    """A STAC source whose server cannot be connected to at all (refused, unknown host) is a
    wrong URL or a server that is not up: one line now, not minutes of retries. A server that
    answers, even with an error, or is slow, is left to the run and its retries."""
    import httpx

    if source.startswith("stac+"):
        parts = urlsplit(source.removeprefix("stac+"))
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    elif source.startswith(("http://", "https://")):
        url = source
    else:
        return
    try:
        httpx.get(url, timeout=10.0).close()
    except httpx.ConnectError as exc:
        raise ConfigError(f"catalog source {source!r}: cannot connect to {urlsplit(url).netloc} "
                          f"({exc}); check the URL and that the server is up") from None
    except httpx.HTTPError:
        return


def check_dask(settings: Settings) -> None:
    """A scheduler address that cannot be one, or a cluster class that cannot be imported,
    fails now (not after the flow started, with a traceback)."""
    if settings.dask_address:
        from distributed.comm.addressing import parse_address, parse_host_port

        try:
            scheme, location = parse_address(settings.dask_address)
            host, port = parse_host_port(location)
        except ValueError as exc:
            raise ConfigError(f"RAILWATCH_DASK_ADDRESS={settings.dask_address!r}: {exc}; "
                              "use tcp://host:8786") from None
        if scheme in ("tcp", "tls"):
            try:
                socket.create_connection((host, port), timeout=10).close()
            except OSError as exc:
                raise ConfigError(f"RAILWATCH_DASK_ADDRESS={settings.dask_address!r}: no scheduler "
                                  f"answers there ({exc.strerror or exc}); start it, or unset the "
                                  "setting for a local cluster") from None
    elif settings.dask_cluster_class:
        module, _, name = settings.dask_cluster_class.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), name, None) if module else None
            why = f"{module} has no {name}"
        except ImportError as exc:
            found, why = None, str(exc)
        if found is None:
            raise ConfigError(f"RAILWATCH_DASK_CLUSTER_CLASS={settings.dask_cluster_class!r} cannot "
                              f"be imported ({why}); give package.module.Class with its package "
                              "installed, e.g. dask_kubernetes.operator.KubeCluster")


def preflight(aoi_ids: Sequence[str] | None = None, sources: Sequence[str] | None = None) -> None:
    """Raise the first configuration problem of a run over `aoi_ids` from `sources`."""
    from railwatch.adapters.catalogs import open_catalog
    from railwatch.adapters.counts import CountsStore
    from railwatch.alerts import surge_params
    from railwatch.aoi import load_registry, select_aois
    from railwatch.search import select_sources
    from railwatch.webhooks import check_config

    settings = get_settings()
    for source in select_sources(settings.catalogs, sources or []):
        open_catalog(source, settings.simulator_dir, settings.asset_maps)
        check_reachable(source)
    registry = load_registry(settings.aoi_dir, settings.max_aoi_km2)
    if not registry:
        raise ConfigError(f"{settings.aoi_dir}: no AOI files (*.geojson) in the AOI registry; add "
                          "one (README: AOI files) or point RAILWATCH_AOI_DIR at yours")
    for aoi in select_aois(registry, aoi_ids):
        surge_params(aoi)  # its thresholds are read only when counts are stored
    check_config(settings.webhook_urls, settings.webhook_secret)
    check_dask(settings)
    CountsStore(settings.db_url)
    check_sqlite_writable(settings.db_url)
    check_store(settings)
