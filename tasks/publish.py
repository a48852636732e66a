"""Publish what a run found: alert episodes, a Prefect event per alert transition, webhooks
(with the retry queue), the time-series plot in the store, and the run's artifacts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event
from pydantic import BaseModel, Field

from railwatch.adapters.alerts import AlertStore
from railwatch.adapters.counts import CountsStore, SceneCountRow, TrackCountRow
from railwatch.adapters.store import open_store
from railwatch.alerts import as_link
from railwatch.aoi import AOI
from railwatch.brief import recount_hint
from railwatch.grid import AOIGrid
from railwatch.publish import ensure_quicklooks, store_series_plot, update_alerts
from railwatch.quicklook import clip_grid
from railwatch.report import flag_text, headline
from railwatch.settings import get_settings
from railwatch.webhooks import check_config, deliver_due, redact

TABLE_ROWS = 500  # newest scenes per AOI in the run's table artifact


class AoiPublished(BaseModel):
    """What was published for one AOI (the run's artifacts are made from these)."""

    aoi_id: str
    label: str
    headline: str | None = None
    scenes: list[dict[str, Any]] = Field(default_factory=list)
    episodes: int = 0
    open_episodes: int = 0
    transitions: list[str] = Field(default_factory=list)  # summaries of the new transitions
    delivered: int = 0
    failed: int = 0
    plot_uri: str | None = None


def emit_events(aoi: AOI, alerts: AlertStore) -> int:
    """One Prefect event per transition not emitted yet; its id is derived from the idempotency
    key, so the event stays the same event however often it is sent."""
    pending = alerts.unemitted(aoi.id)
    for t in pending:
        body = json.loads(t.body)
        emit_event(event=body["event"], id=uuid5(NAMESPACE_URL, f"railwatch:{t.key}"),
                   resource={"prefect.resource.id": f"railwatch.aoi.{aoi.id}",
                             "prefect.resource.name": aoi.label},
                   related=[{"prefect.resource.id": f"railwatch.alert.{t.episode_id}",
                             "prefect.resource.role": "alert"}],
                   payload=body)
    alerts.mark_emitted([t.key for t in pending])
    return len(pending)


@task(name="render-quicklooks", cache_policy=NONE)
def render_quicklooks(aoi: AOI, grid: AOIGrid, scenes: list[tuple[SceneCountRow, list[TrackCountRow]]],
                      store_url: str) -> int:
    """The quicklooks of the scenes new alert transitions point at, rendered on a worker ahead of
    `publish-alerts` (which then finds them in the store); how many exist. No database, no
    secrets, no settings: the flow hands over the clips' grid, the scenes and their track counts."""
    tracks = {row.scene_id: t for row, t in scenes}
    return len(ensure_quicklooks(aoi, grid, open_store(store_url), [row for row, _ in scenes],
                                 lambda row: tracks[row.scene_id]))


@task(name="publish-alerts", cache_policy=NONE)
def publish_alerts(aoi: AOI, db: CountsStore, store_url: str, detector_version: str) -> AoiPublished:
    """Episodes → events → webhooks (new and retried) → plot; safe to rerun: nothing repeats."""
    logger = get_run_logger()
    settings = get_settings()  # read here, never passed as a parameter: it holds the secret
    urls, secret = settings.webhook_urls, settings.webhook_secret
    check_config(urls, secret)
    store = open_store(store_url)
    alerts = AlertStore(db)
    max_age = settings.webhook_max_age_days
    since = datetime.now(UTC) - timedelta(days=max_age) if max_age else None
    hint = recount_hint(aoi, db, detector_version)
    if hint:  # the surge baseline holds this version's counts only
        logger.warning("%s; until then surges are judged on this detector's counts alone", hint)
    update = update_alerts(aoi, clip_grid(aoi, settings.clip_buffer_m), db, alerts, store,
                           detector_version, urls, since)
    emit_events(aoi, alerts)
    out = AoiPublished(aoi_id=aoi.id, label=aoi.label, headline=headline(aoi, update.rows),
                       episodes=update.episodes, open_episodes=update.open_episodes,
                       transitions=[json.loads(t["body"])["summary"] for t in update.new])
    if urls and secret is not None:
        results = deliver_due(alerts, aoi.id, secret, settings.webhook_timeout_s,
                              settings.webhook_attempts, settings.webhook_backoff_s, logger=logger)
        out.delivered, out.failed = sum(r.delivered for r in results), sum(not r.delivered for r in results)
    elif update.new:
        logger.warning("%s: %d new alert transition(s), no webhook configured "
                       "(RAILWATCH_WEBHOOK_URLS): %s", aoi.id, len(update.new), "; ".join(out.transitions))
    if update.rows:
        key = store_series_plot(aoi, update.rows, alerts, store, detector_version)
        out.plot_uri = as_link(store.uri(key))
    out.scenes = [{"aoi": aoi.id, "date": f"{r.acquired:%Y-%m-%d}", "scene": r.scene_id,
                   "valid": round(r.valid_fraction, 2), "cars": r.cars,
                   "interval": f"{r.cars_low}-{r.cars_high}", "flag": flag_text(r)}
                  for r in update.rows[-TABLE_ROWS:]]
    return out


def publish_run_artifacts(published: Sequence[AoiPublished], urls: Sequence[str]) -> None:
    """The flow run's artifacts: counts per AOI with flags (table), what happened (markdown),
    and a link to each AOI's time-series plot."""
    rows = [s for p in published for s in p.scenes]
    if rows:
        create_table_artifact(rows, key="railwatch-counts",
                              description="Rail cars per scene (newest scenes of each AOI), with flags")
    lines = ["# railwatch run", ""]
    for p in published:
        lines += [f"## {p.label} (`{p.aoi_id}`)", "",
                  f"**{p.headline}**" if p.headline else "No surge flagged.", "",
                  f"- alert episodes: {p.episodes} ({p.open_episodes} open)"]
        lines += [f"- new: {t}" for t in p.transitions]
        if urls:
            lines.append(f"- webhooks to {', '.join(redact(u) for u in urls)}: {p.delivered} delivered, "
                         f"{p.failed} failed (queued for the next run)")
        if p.plot_uri:
            lines.append(f"- plot: [{p.plot_uri}]({p.plot_uri})")
            create_link_artifact(p.plot_uri, link_text=f"{p.label}: rail cars per scene (PNG)",
                                 key=f"railwatch-plot-{artifact_key(p.aoi_id)}")
        lines.append("")
    create_markdown_artifact("\n".join(lines), key="railwatch-run",
                             description="Counts, surges and deliveries of this run")


def artifact_key(text: str) -> str:
    """Artifact keys allow only lowercase letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in text.lower())
