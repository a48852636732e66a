"""One image (and optionally a reference) in, one SceneMeasurement out: the `railwatch detect`
path, which has no AOI history to lean on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from railwatch.core.locate import located_tracks, on_aoi
from railwatch.core.measure import measure_scene
from railwatch.core.profiles import extract_profiles, track_samples
from railwatch.core.registration import estimate_alignment
from railwatch.core.resolved import profile_step_m
from railwatch.core.types import BoolArray, DetectorParams, SceneMeasurement, TrackLine


def detect_image(
    image: npt.NDArray[Any],
    valid: BoolArray | None,
    tracks: Sequence[TrackLine],
    gsd_m: float,
    car_pitch_m: float,
    reference: npt.NDArray[Any] | None = None,
    reference_valid: BoolArray | None = None,
    params: DetectorParams | None = None,
    track_lengths_m: Mapping[str, float] | None = None,
    max_shift_m: float = 18.0,
    sun_azimuth_deg: float | None = None,
    sun_elevation_deg: float | None = None,
    coverage: BoolArray | None = None,
) -> SceneMeasurement:
    """Align the image to the reference (if any), find where the tracks really are
    (`locate_tracks`: a reference is as misregistered as any scene), profile both there, and
    measure with the reference's profiles as the background, or from the image alone (flag
    "no_reference").

    `max_shift_m`: the largest misregistration looked for, in metres on the ground
    (PlanetScope's geolocation error is several metres whatever the pixel size). `coverage`:
    where the image has data at all (its footprint; `valid` also drops clouds), so that a
    scene covering part of the AOI is flagged "partial_coverage", not "cloudy"."""
    p = params or DetectorParams()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] not in (3, 4):
        raise ValueError(f"image must be (3 or 4 bands, H, W), got shape {image.shape}")
    # non-finite pixels count as invalid wherever they are used (sampling checks them)
    mask = np.ones(image.shape[1:], dtype=bool) if valid is None else np.asarray(valid, bool)
    alignment = None
    background = None
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float32)
        if reference.shape != image.shape:
            raise ValueError(f"reference {reference.shape} and image {image.shape} differ")
        ref_mask = (
            np.ones(image.shape[1:], dtype=bool)
            if reference_valid is None
            else np.asarray(reference_valid, bool)
        )
        alignment = estimate_alignment(image, mask, reference, ref_mask, max_shift_m / gsd_m, p)
        lines, location = located_tracks((reference, ref_mask), tracks, gsd_m, p, max_shift_m,
                                         image=(image, mask, alignment))
    else:
        lines, location = located_tracks((image, mask), tracks, gsd_m, p, max_shift_m)
    # profiles are taken where the tracks show in the reference's (or the image's) frame
    geometry = track_samples(lines, gsd_m, profile_step_m(gsd_m, p))
    if reference is not None:
        background = extract_profiles(reference, ref_mask, geometry, gsd_m, params=p)
    profiles = extract_profiles(image, mask, geometry, gsd_m, params=p, coverage=coverage,
                                alignment=alignment)
    reported = on_aoi(alignment, location, image.shape[0])
    return measure_scene(
        profiles, background, gsd_m, car_pitch_m, reported, track_lengths_m, params=p,
        sun_azimuth_deg=sun_azimuth_deg, sun_elevation_deg=sun_elevation_deg,
    )
