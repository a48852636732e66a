"""The detection core: pure numpy/scipy, arrays in, frozen dataclasses out.

Pipeline order: `build_composite` (a reference per AOI) or `background_from_history`;
`align_to_reference` (geometry + radiometry; or `estimate_alignment`, then `extract_profiles(...,
alignment=)` samples the tracks where the aligned image would have them, without resampling);
`extract_profiles` (spectra along tracks);
`measure_scene` (occupied metres, cars, interval, flags). `detect_image` chains them for one
image. No I/O, no orchestration, no environment: callers pass everything in.
"""

from railwatch.core.composite import build_composite
from railwatch.core.detect import detect_image
from railwatch.core.measure import measure_scene
from railwatch.core.profiles import background_from_history, extract_profiles
from railwatch.core.registration import align_to_reference, estimate_alignment
from railwatch.core.selfref import background_from_scene
from railwatch.core.types import (
    DETECTOR_VERSION,
    Alignment,
    DetectorParams,
    SceneMeasurement,
    TrackLine,
    TrackMeasurement,
    TrackProfile,
)

__all__ = [
    "DETECTOR_VERSION",
    "Alignment",
    "DetectorParams",
    "SceneMeasurement",
    "TrackLine",
    "TrackMeasurement",
    "TrackProfile",
    "align_to_reference",
    "background_from_history",
    "background_from_scene",
    "build_composite",
    "detect_image",
    "estimate_alignment",
    "extract_profiles",
    "measure_scene",
]
