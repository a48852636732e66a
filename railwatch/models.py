"""Pydantic models passed between tasks: what a catalog found, what a clip made, what was measured."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from railwatch.adapters.raster import MaskKind


class SceneRef(BaseModel):
    """One scene a catalog found over an AOI, with everything needed to read it."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="Catalog source name, e.g. 'simulator' or 'stac:sentinel-2-l2a'.")
    scene_id: str
    acquired: datetime
    published: datetime | None = Field(None, description="When the provider published or last "
                                       "updated the scene (the registry's high-water mark).")
    version: str | None = Field(None, description="Provider's version of the scene, e.g. "
                                "'finalized@2023-09-02T07:00:00Z'; a change is reprocessed.")
    cloud_cover: float | None = None
    sun_azimuth: float | None = Field(None, description="Degrees clockwise from north.")
    sun_elevation: float | None = Field(None, description="Degrees above the horizon.")
    image_href: str
    image_bands: tuple[int, ...] = Field(description="1-based band indexes: blue, green, red, nir.")
    band_hrefs: tuple[str, ...] = Field((), description="One single-band asset per colour "
                                        "(blue, green, red[, nir]) when the source has no multi-band "
                                        "image; ingestion of these is issue 4's.")
    mask_href: str | None = None
    mask_kind: MaskKind | None = None
    item_href: str | None = None


class ClipRef(BaseModel):
    """Where the clip of one (AOI, scene) lives in the store, and what it covers."""

    model_config = ConfigDict(frozen=True)

    aoi_id: str
    scene: SceneRef
    image_key: str
    mask_key: str
    valid_fraction: float = Field(description="Clear, covered fraction of the AOI polygon.")
    seconds: float = 0.0


class MeasuredScene(BaseModel):
    """A clip after registration to the AOI reference and profile extraction."""

    model_config = ConfigDict(frozen=True)

    clip: ClipRef
    profile_key: str
    shift_px: tuple[float, float]
    registration_confidence: float
    reference_id: str | None = None  # the reference's digest (`measure.reference_digest`)
    seconds: float = 0.0


class TrackCount(BaseModel):
    """The measurement of one track in one scene."""

    model_config = ConfigDict(frozen=True)

    track_id: str
    length_m: float
    occupied_m: float
    cars: int
    cars_low: int
    cars_high: int
    valid_fraction: float
    segments: tuple[tuple[float, float], ...] = Field((), description="Occupied stretches, "
                                                      "(start_m, end_m) along the track.")


class SceneCount(BaseModel):
    """The measurement of one scene: per-track counts and the totals."""

    model_config = ConfigDict(frozen=True)

    aoi_id: str
    source: str
    scene_id: str
    acquired: datetime
    detector_version: str
    tracks: tuple[TrackCount, ...]
    occupied_m: float
    cars: int
    cars_low: int
    cars_high: int
    valid_fraction: float
    shift_m: tuple[float, float]
    flags: tuple[str, ...]
    image_key: str
    mask_key: str
    background_scenes: int = Field(0, description="Clear scenes in the background: earlier ones, "
                                   "or for an AOI's first days its first clear scenes but this one "
                                   "(0: the AOI's reference composite was the background).")
    background_id: str = Field("", description="Digest of those scenes' keys, or 'reference'.")
    seconds: float = 0.0


class RunSummary(BaseModel):
    """What one flow run did, for the CLI, artifacts and the closing table."""

    aois: list[str] = Field(default_factory=list)
    found: int = 0
    discovered: int = 0  # scenes registered for the first time by this run
    revised: int = 0  # known scenes whose provider published a new version (reprocessed)
    processed: int = 0
    redetected: int = 0  # done scenes counted again: a scene acquired before them arrived late
    measured_with_clip: int = 0  # measured as they were clipped (their AOI's reference was final)
    skipped_done: int = 0
    failed: list[tuple[str, str, str]] = Field(default_factory=list)  # (aoi, scene, reason)
    skipped: list[tuple[str, str, str]] = Field(default_factory=list)  # (aoi, catalog item, reason)
    flagged: list[tuple[str, str]] = Field(default_factory=list)  # (aoi, scene)
    seconds: dict[str, float] = Field(default_factory=dict)  # wall time per stage
    scene_seconds: dict[str, float] = Field(default_factory=dict)  # summed task time per stage
