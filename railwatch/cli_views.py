"""What the CLI shows and writes from the stored counts: the counts table and plot, the alert
episodes and their webhooks, the report; and the one-line error for a place that cannot be
written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from railwatch.cli_search import aoi_and_db, out
from railwatch.errors import ConfigError


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Files written under `path` (a file or a folder): a place that cannot take them is a
    one-line error naming it."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write there ({exc.strerror or exc}"
                          + (f": {exc.filename}" if exc.filename else "") + ")") from None


def show_counts(aoi_id: str, plot: bool = True) -> None:
    from railwatch.adapters.counts import CountsStore
    from railwatch.aoi import load_registry, select_aois
    from railwatch.brief import current_counts
    from railwatch.core import DETECTOR_VERSION
    from railwatch.report import counts_table, headline, plot_counts
    from railwatch.settings import get_settings

    settings = get_settings()
    (aoi,) = select_aois(load_registry(settings.aoi_dir, settings.max_aoi_km2), [aoi_id])
    db = CountsStore(settings.db_url)
    rows = current_counts(aoi, db, DETECTOR_VERSION)
    out.print(counts_table(aoi, rows, db.track_counts(aoi.id, detector_version=DETECTOR_VERSION)))
    line = headline(aoi, rows)
    if line:
        out.print(f"[bold red]{line}[/]")
    if plot and rows:
        target = settings.home / "reports" / f"{aoi.id}-cars.png"
        with writing(target):
            path = plot_counts(aoi, rows, target)
        out.print(f"plot:   {path}")


def show_alerts(aoi_id: str) -> None:
    """The AOI's alert episodes and where their webhooks went (the secret is never shown)."""
    from railwatch.adapters.alerts import AlertStore
    from railwatch.core import DETECTOR_VERSION
    from railwatch.webhooks import redact

    settings, area, db = aoi_and_db(aoi_id)
    alerts = AlertStore(db)
    for a in alerts.alerts(area.id, DETECTOR_VERSION):
        closed = f", closed {a.closed_at:%Y-%m-%d}" if a.closed_at else ""
        out.print(f"alert:  {a.episode_id} {a.status}: opened {a.opened_at:%Y-%m-%d}{closed}, "
                  f"peak {a.peak_cars} cars on {len(a.scene_ids)} flagged scene(s)")
    outbox = alerts.outbox()
    if not settings.webhook_urls:
        out.print("webhooks: none configured (RAILWATCH_WEBHOOK_URLS); alerts went to Prefect events "
                  "railwatch.surge.* and the run's artifacts")
    for url in settings.webhook_urls:
        mine = [o for o in outbox if o.url == url]
        out.print(f"webhooks: {redact(url)}: {sum(o.status == 'delivered' for o in mine)} delivered, "
                  f"{sum(o.status == 'failed' for o in mine)} queued for retry, "
                  f"{sum(o.status == 'skipped' for o in mine)} skipped as older than "
                  "RAILWATCH_WEBHOOK_MAX_AGE_DAYS")


def write_report_files(aoi_id: str, since: str | None = None, out_dir: Path | None = None) -> None:
    from railwatch.adapters.store import open_store
    from railwatch.brief import parse_since, write_report
    from railwatch.core import DETECTOR_VERSION

    settings, area, db = aoi_and_db(aoi_id)
    folder = out_dir or settings.home / "reports"
    with writing(folder):
        result = write_report(area, db, open_store(settings.store_url), DETECTOR_VERSION,
                              parse_since(since), folder, settings.clip_buffer_m)
    out.print(f"report: {result.plot}")
    if result.alert is not None:
        a = result.alert
        out.print(f"alert {a.episode_id} ({a.status}): opened {a.opened_at:%Y-%m-%d}, peak "
                          f"{a.peak_cars} cars" + (f", {a.ratio:.1f}× the historical max" if a.ratio else ""))
    for label, path in (("before", result.before), ("after", result.after)):
        if path is not None:
            out.print(f"{label}:  {path}")
