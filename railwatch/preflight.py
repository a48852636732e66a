"""What every run needs, checked before any work starts: the AOI files, the catalog sources,
the counts database and the store. Each problem is one line that says what to fix."""

from __future__ import annotations

from collections.abc import Sequence

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_chain, wait_fixed

from railwatch.adapters.store import open_store
from railwatch.errors import StorageError
from railwatch.settings import Settings, get_settings


def check_store(settings: Settings) -> None:
    """A store that cannot be used fails now (missing bucket, refused keys: at once; unreachable
    or erring: after the tasks' retry delays)."""
    delays = settings.task_retry_delays_s
    Retrying(retry=retry_if_exception_type(StorageError), reraise=True,
             wait=wait_chain(*(wait_fixed(d) for d in delays)) if delays else wait_fixed(0),
             stop=stop_after_attempt(len(delays) + 1))(open_store(settings.store_url).check)


def preflight(aoi_ids: Sequence[str] | None = None, sources: Sequence[str] | None = None) -> None:
    """Raise the first configuration problem of a run over `aoi_ids` from `sources`."""
    from railwatch.adapters.counts import CountsStore
    from railwatch.aoi import load_registry, select_aois
    from railwatch.search import select_sources

    settings = get_settings()
    select_sources(settings.catalogs, sources or [])
    select_aois(load_registry(settings.aoi_dir, settings.max_aoi_km2), aoi_ids)
    CountsStore(settings.db_url)
    check_store(settings)
