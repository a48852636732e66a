"""Value types of the detection core: arrays in, frozen dataclasses out.

Everything here is plain data so the pipeline can pickle it, store it and compare it; the
thresholds live in one `DetectorParams` so a result can be reproduced from (version, params).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

DETECTOR_VERSION = "0.4.31"

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]


def _empty_positions() -> npt.NDArray[np.float64]:
    return np.zeros((0, 2), dtype=np.float64)


def no_sides() -> npt.NDArray[np.float32]:
    """`TrackProfile.sides` when the strips beside the track were not sampled."""
    return np.zeros((0, 2, 0), dtype=np.float32)


def _empty_flags() -> BoolArray:
    return np.zeros(0, dtype=bool)


@dataclass(frozen=True)
class TrackLine:
    """A track centreline in pixel coordinates of the image grid.

    Each part is an (N, 2) float64 array of (col, row); pixel (0, 0) is the upper-left corner of
    the upper-left pixel (railwatch.grid.AOIGrid.to_pixels), so pixel centres sit at +0.5.
    """

    id: str
    parts: tuple[npt.NDArray[np.float64], ...]


@dataclass(frozen=True)
class Alignment:
    """How an image was put onto a reference: geometry first, then radiometry.

    `shift_px` = (dx, dy) in pixels (columns, rows; +dy is down) that was APPLIED to the image.
    `confidence` 0..1 from the correlation peak's dominance; below ~0.3 the shift is doubtful.
    `gains`/`offsets` per band map the image onto the reference: ref ≈ gain * image + offset.
    """

    shift_px: tuple[float, float]
    confidence: float
    gains: tuple[float, ...]
    offsets: tuple[float, ...]

    @staticmethod
    def identity(bands: int) -> Alignment:
        """No shift, unit gain: what "not aligned" means."""
        return Alignment((0.0, 0.0), 1.0, (1.0,) * bands, (0.0,) * bands)


@dataclass(frozen=True)
class TrackProfile:
    """Corridor-averaged spectra sampled along a track centreline every `step_m`.

    `values` is (S, bands) float32, NaN where not valid. `positions` (S, 2) are the (col, row)
    pixel coordinates of the samples, used to find the neighbouring track's sample across the
    gap (empty when unknown: pass `tracks=` to measure_scene to restore them, otherwise the
    neighbour model is skipped). `covered` (S,) is True where the sample lies on the image
    footprint at all (False: outside the scene, as opposed to clouded); empty = all covered.
    """

    track_id: str
    step_m: float
    values: npt.NDArray[np.float32]
    valid: BoolArray
    positions: npt.NDArray[np.float64] = field(default_factory=_empty_positions)
    covered: BoolArray = field(default_factory=_empty_flags)
    # (S, 2, bands): the ground beside the track, `side_strip_m` to either side of the
    # centreline (-normal, +normal), where a car's own shadow falls; empty when not sampled
    # (sampled where cars are resolved)
    sides: npt.NDArray[np.float32] = field(default_factory=no_sides)

    @property
    def length_m(self) -> float:
        """Length of centreline the samples stand for (one step per sample)."""
        return float(len(self.valid) * self.step_m)

    @property
    def covered_mask(self) -> BoolArray:
        """`covered`, or all True when it was not given."""
        if self.covered.shape == self.valid.shape:
            return self.covered
        return np.ones(self.valid.shape, dtype=bool)


@dataclass(frozen=True)
class TrackMeasurement:
    """What stands on one track. Counts cover the valid part; `cars_high` also allows for cars
    that may stand in masked stretches, so [cars_low, cars_high] aims at the whole track."""

    track_id: str
    length_m: float
    occupied_m: float
    cars: int
    cars_low: int
    cars_high: int
    valid_fraction: float
    segments: tuple[tuple[float, float], ...]  # (start_m, end_m) along the track


@dataclass(frozen=True)
class SceneMeasurement:
    """Per-track results, their totals and quality information for one scene.

    `shift_m` = Alignment.shift_px * gsd_m, same axes as the pixels: (+x east, +y DOWN/south on
    the north-up AOI grid).
    """

    tracks: tuple[TrackMeasurement, ...]
    occupied_m: float
    cars: int
    cars_low: int
    cars_high: int
    valid_fraction: float  # length-weighted over tracks
    shift_m: tuple[float, float]
    flags: tuple[str, ...]
    detector_version: str = DETECTOR_VERSION


@dataclass(frozen=True)
class DetectorParams:
    """All thresholds and constants of the detector in one place. Defaults were set on the
    synthetic 3 m yards of tests/core and checked on a simulated Tumangang season (Jul-Oct
    2023, railwatch.simulate); the count interval is calibrated there to hold ~90 %."""

    # registration
    registration_highpass_sigma_px: float = 0.0  # 0: gradient magnitude; > 0: image - blur
    registration_upsample: int = 20  # sub-pixel resolution 1/upsample px
    registration_patch_px: int = 128  # phase correlation on tiles of this size (power of two) ...
    registration_patches: int = 8  # ... the most textured this many of them, pooled
    min_registration_confidence: float = 0.3
    min_location_shift_px: float = 0.25  # smaller track-location corrections are not applied
    # radiometry (trimmed regression on pseudo-invariant pixels)
    radiometric_iterations: int = 6
    radiometric_trim_sigma: float = 2.5
    radiometric_max_pixels: int = 2048  # a fixed-stride grid of at most this many pixels
    # composite
    composite_iterations: int = 3
    composite_min_samples: int = 3
    # profiles
    corridor_half_width_m: float = 0.75  # across-track averaging (cars are ~3 m wide)
    mask_buffer_px: int = 1  # extra masked pixels around invalid areas (cloud edges, haze)
    # near masked samples (this far, along or across) a weak, even change is a cloud's veil or
    # its shadow's penumbra, not a car (cloudedge.py): 0 turns the rule off
    cloud_edge_m: float = 20.0
    cloud_edge_max_change: float = 0.12  # weak: every band within this fraction
    # ... and anywhere, when the tracks this far across (and up to cloud_edge_m) change alike,
    # weakly and evenly, by at least this share: a faint cloud shadow no mask flagged (a car
    # reaches the next siding at most, and its shadow is deep); 0 turns the rule off
    cloud_far_min_m: float = 8.0
    cloud_far_share: float = 0.3
    # background model
    history_min_valid: int = 3  # valid samples a position needs in the history median
    # scoring
    smooth_m: float = 3.0  # along-track boxcar on the difference (≈ one pixel)
    noise_floor_rel: float = 0.01  # noise floor per band, relative to the background level
    # share of samples (those nearest "no change") the level offset is taken from: a yard
    # loaded over most of its length still has that much empty track
    noise_keep_quantile: float = 0.3
    noise_lag_m: float = 9.0  # local noise from sample pairs this far apart (independent)
    # the yard-wide noise may exceed the local noise this much (seen on simulated scenes:
    # 0.9-1.6 in mostly empty yards, ~20 where cars cover most of the tracks). At 3 m the local
    # noise is the better measure (a grey train filling a track otherwise hides in the bulk:
    # 3 m bench, dense 2/10 -> 4/10, empty 9/10 -> 10/10); at <= 1 m car roofs' own texture
    # makes the local pairs noisy: within a uniform train's roofs they are tiny, and a bound
    # (3 until 0.4.13) made the empty ballast of a loaded yard read as changed: none (None)
    # (0.5 m bench, dense MAE 8.5 -> 5.3 cars, misregistered 0.9 -> 0.6)
    noise_max_ratio: float | None = 1.0
    # ... and in no direction may the noise that evidence is scored against be below this
    # share of the local noise's variance (a tenth: a third of its spread; occupancy.py). 3 m
    # bench with reference and sun: dense 6 -> 7/10 (MAE 35.8 -> 31.7 cars), nothing lost; a
    # fifth: misregistered 10/10 too but clear 9/10 (0.7 m short); 0 turns it off
    noise_local_floor: float = 0.1
    resolved_noise_max_ratio: float | None = None
    noise_about_no_change: bool = False  # the noise's centre: the bulk's own, or zero (scoring)
    self_check: bool = True  # evidence must also stand out from the scene's own ballast
    # the self-check's scene ballast leaves out changes this strong (beyond the ballast's
    # natural texture, ~3 % along a track), however much of a track they cover (3 m bench,
    # with reference and sun: low contrast 4 -> 9/10, nothing else lost; no longer only up to
    # half a track: dense 4 -> 5/10, bias -33 -> -26 cars). 9 (twice high_z) until 0.4.28: a
    # train of grey gondolas 8 % darker than the ballast peaked at z 8 and became its own
    # ballast (3 m dense #3: 55 cars, 6 found); 6.5: dense 7 -> 8/10, bias -23.5 -> -20.9
    # (5: a low-contrast scene's leak kept, 10 -> 9/10; 7: #3 misses the metres by 2 m)
    self_check_keep_z: float = 6.5
    self_check_along_m: float = 6.0  # how far along a neighbour's stronger change still counts
    level_correction: bool = True  # remove a residual per-band offset between image and background
    high_z: float = 4.5  # hysteresis seed threshold (z-score of the spectral distance)
    low_z: float = 2.5  # hysteresis growth threshold
    # neighbour suppression (tracks 5.3 m apart bleed into each other at 3 m GSD)
    neighbour_max_m: float = 8.0  # a neighbour sample farther than this is not a neighbour
    # a car's shadow reaches the second siding (10.6 m) when the sun is below ~30° (winter at
    # 42° N): within this a shadow-like stretch beside a loaded track may be a shadow
    shadow_reach_m: float = 12.0
    shadow_reach_max_m: float = 16.0  # a winter sun's shadow (18°) reaches the third siding
    car_max_height_m: float = 4.6  # the tallest cars (box cars, tank cars) cast the longest shadow
    # a full shadow's darkening: this percentile of the coverage-normalised darkening of shaded
    # samples (gaps between cars, lower cars and blur make the median a partial shadow)
    full_shadow_percentile: float = 80.0
    # a full shadow's depth is learnt where the usual car's shadow covers at least this much of
    # a sample; with none (0.3 here: an oblique 44° sun's covered 0.27 of the next siding at
    # 0.5 m) the geometric shadow model is dropped for the scene, and a gondola's fainter
    # shadow became a car (0.5 m bench, cloudy #8)
    full_shadow_min_cover: float = 0.2
    # the optics and the profile's interpolation blur a shadow's edges (Gaussian sigma, pixels;
    # the simulator's optics 0.55, bilinear sampling adds about 0.4 in quadrature):
    # a full shadow on the next siding still darkens the one beyond a little
    shadow_blur_px: float = 0.7
    # share of the strong evidence read as a neighbour's shadow or leak that the count's high
    # end keeps as possible cars (ambiguity.shadowed_cars). Demo season, 31 clear scenes: the
    # interval held the truth on 25 without, 31 with 0.4 (mean width 19 -> 28 cars), 31 with 1.0 (41)
    shadow_may_hide: float = 0.4
    car_min_height_m: float = 3.5  # most cars are 3.5-4.6 m tall (a gondola 2.9 m casts less)
    car_least_height_m: float = 2.9  # the lowest cars (gondolas): the least a shadow darkens
    car_half_width_m: float = 1.6
    # a stretch is shadow-like when its samples are darker than the ballast by fractions within
    # this ratio in every band (simulated shadows: 1.25; grey roofs: > 2)
    shadow_like_band_ratio: float = 1.6
    neighbour_max_bleed: float = 0.5  # largest fraction of a neighbour's difference that leaks
    neighbour_min_coef: float = -0.1
    bleed_typical: float = 0.25  # scale of the soft prior on the leak fraction
    leak_darkening: float = 0.06  # darkening (fraction of ballast) a leaking roof may bring
    neighbour_model_error: float = 0.08  # relative error of the leak/shadow explanations
    neighbour_iterations: int = 4
    caster_close_m: float = 5.0  # a neighbour's train counts as unbroken across this (couplers)
    shadow_min_samples: int = 30  # strong samples beside a neighbour needed to learn the shadow
    shadow_min_asymmetry: float = 0.3  # one-sidedness of the darkening (0 none, 1 all one side)
    shadow_min_darkening: float = 0.08  # weaker shadows are left to the bleed term
    # one side's neighbours darker on average by this much tells the shadow side (hundreds of
    # samples on each side: a few per cent is far beyond noise; 0.08 sat on a knife's edge)
    shadow_side_margin: float = 0.04
    shadow_max_band_ratio: float = 2.5  # shadow-like: band darkening fractions within this ratio
    shadow_min_rel: float = 0.5  # a car must darken its anti-sun neighbour at least this much
    shadow_max_rel: float = 1.3  # ... and at most this much (relative to the learnt darkening)
    # segments
    gap_close_m: float = 6.0  # close gaps up to this length inside a train (couplers, blur)
    # ... and up to this many car pitches where this share of the gap changed (z >= low_z) but
    # the neighbour model explained it away
    train_gap_max_cars: float = 2.0
    train_gap_min_share: float = 0.9
    min_segment_car_fraction: float = 0.5  # drop segments shorter than this × car pitch
    # a lone stretch shorter than this × car pitch (no other within a pitch) must reach
    # short_min_z somewhere: faint lone blips (tone changes, leaks; z 5-6.5) are not cars, a
    # grey car's roof reaches 12+ (3 m bench: cloudy 8 -> 10/10, false cars on empty yards 3 -> 0)
    short_max_cars: float = 1.2
    short_min_z: float = 7.0
    edge_refine_max_px: float = 1.5  # how far a segment end may move to its half-contrast point
    coupler_gap_m: float = 1.0  # a train of n cars is n * pitch - gap long
    # count interval (≈ 90 %)
    end_sigma_px: float = 0.6  # 1-sigma error of one segment end
    pitch_cv: float = 0.07  # car-to-car variability of the pitch
    model_cv: float = 0.1  # relative error of the occupancy model (partial misses, bleed)
    count_sd_floor: float = 0.8  # per track: a phantom or missed short stretch
    interval_z: float = 1.645
    # a masked stretch may be this full (share of its length) at least: the interval's high end
    # must hold what clouds hide, and a loaded yard's sidings are about this full
    hidden_occupancy: float = 0.35
    # quality flags
    cloudy_below: float = 0.8  # valid / covered fraction under which a scene is "cloudy"
    partial_below: float = 0.95  # covered fraction under which coverage is "partial"
    # no-reference mode
    selfref_window_m: float = 80.0  # along-track window of the ballast running median
    selfref_inlier_z: float = 3.0
    selfref_noise_floor_rel: float = 0.04  # noise floor without a reference (rough background)
    selfref_model_cv: float = 0.35  # count error without a reference (simulated: ~10 cars MAE)
    selfref_min_typical: float = 0.3  # below this share of yard-typical samples a track has its own bed
    # resolved cars (gsd <= resolved_gsd_m: coupler gaps visible, cars counted one by one)
    resolved_gsd_m: float = 1.0
    resolved_step_px: float = 1.0  # profile step in pixels there (1 m above)
    resolved_min_step_m: float = 0.25
    resolved_fill_m: float = 3.0  # running median bridging coupler gaps before scoring
    resolved_gap_z: float = 6.0  # a coupler gap departs this much from its bridged surroundings
    # a car is this many of the AOI's pitches long, least and most: gaps (and ends) closer
    # than the least are a roof's own pattern (hopper bays, containers on a flat car)
    resolved_min_car_fraction: float = 0.75
    resolved_max_car_fraction: float = 1.3
    resolved_visible_z: float = 9.0  # a roof this distinct from ballast is seen, not grey
    resolved_max_bleed: float = 0.0  # neighbour_max_bleed there: pixels do not mix sidings
    resolved_chain_gaps: int = 3  # this many gaps one car apart make a train (0: off)
    resolved_chain_own_gaps: int = 2  # ... this many of them where no neighbour explains a change
    # ... or this many faint ones in a row, evenly spaced (within this share of the first spacing)
    resolved_faint_gap_z: float = 2.5
    resolved_faint_chain_gaps: int = 4
    resolved_faint_spacing_tolerance: float = 0.1
    resolved_split_m: float = 4.0  # unchanged ballast this long between visible cars ends a chain
    # a car's own shadow, on the ground beside its track (resolved cars, the sun known): a roof
    # that matches the ballast still shades the ground on its anti-sun side
    side_strip_m: float = 2.0  # where: clear of the car's body (half-width 1.6 m), of the next one's
    own_shadow_min_dark: float = 0.25  # the strip this much darker than in the background...
    own_shadow_max_centre_dark: float = 0.15  # ... its centreline not darker than this (a
    # neighbour's shadow across the whole track darkens both)
    own_shadow_min_across: float = 0.5  # the shadow's direction this far across the track at least
    own_shadow_low_car_m: float = 1.2  # an empty flat car: the lowest a car is
    own_shadow_lit_max: float = 0.1  # a strip that lost at most this much is lit: no car casts there
