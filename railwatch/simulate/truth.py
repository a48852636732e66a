"""The ground-truth record of a scene: what stood on each track and what a detector could see.

Positions are metres along each track centreline from its first vertex (as in the AOI file).
`occupied_m` follows spec/detect-cli.md: a train's length from its first car's front to its
last car's end (coupler gaps inside a train included), summed over the trains on the track.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from railwatch.simulate.scene import SceneSpec, TrackLine, Yard
from railwatch.simulate.season import DayPlan

SAMPLE_STEP_M = 1.0


def clear_along(
    track: TrackLine, s: NDArray[np.float64], spec: SceneSpec, clear: NDArray[np.uint8]
) -> NDArray[np.bool_]:
    """Whether the image shows each point `s` of a track unobstructed (clear and inside).

    The point is looked up where it appears in the image, i.e. displaced by the misregistration.
    """
    xy = track.points(s)
    dx, dy = spec.shift_m
    col = np.floor((xy[:, 0] + dx - spec.transform.c) / spec.gsd_m).astype(np.int64)
    row = np.floor((spec.transform.f - (xy[:, 1] + dy)) / spec.gsd_m).astype(np.int64)
    inside = (col >= 0) & (col < spec.width) & (row >= 0) & (row < spec.height)
    out = np.zeros(s.shape, dtype=bool)
    out[inside] = clear[row[inside], col[inside]] == 1
    return out


def build_truth(
    aoi_id: str, plan: DayPlan, spec: SceneSpec, yard: Yard, clear: NDArray[np.uint8], extra: dict[str, Any]
) -> dict[str, Any]:
    """The truth JSON of one scene (see the module docstring for the meaning of each field)."""
    tracks = []
    total = {"occupied_m": 0.0, "cars": 0, "cars_clear": 0, "length_m": 0.0, "clear_m": 0.0}
    for track in yard.tracks:
        length = track.length_m / track.scale
        trains = sorted((t for t in plan.trains if t.track_id == track.id), key=lambda t: t.start_m)
        samples = np.arange(SAMPLE_STEP_M / 2, length, SAMPLE_STEP_M)
        seen = clear_along(track, samples, spec, clear)
        clear_fraction = float(seen.mean()) if samples.size else 0.0
        cars_list: list[dict[str, Any]] = []
        for train in trains:
            for car, start in zip(train.cars, train.car_starts(), strict=True):
                cars_list.append(
                    {
                        "start_m": round(start, 2),
                        "length_m": car.length_m,
                        "type": car.type,
                        "colour": car.colour,
                    }
                )
        centres = np.array([c["start_m"] + c["length_m"] / 2 for c in cars_list], dtype=np.float64)
        cars_clear = int(clear_along(track, centres, spec, clear).sum()) if cars_list else 0
        occupied = round(float(sum(t.length_m for t in trains)), 2)
        tracks.append(
            {
                "id": track.id,
                "length_m": round(length, 2),
                "occupied_m": occupied,
                "cars": len(cars_list),
                "cars_clear": cars_clear,
                "clear_fraction": round(clear_fraction, 4),
                "segments": [[round(t.start_m, 2), round(t.end_m, 2)] for t in trains],
                "cars_list": cars_list,
            }
        )
        total["occupied_m"] += occupied
        total["cars"] += len(cars_list)
        total["cars_clear"] += cars_clear
        total["length_m"] += length
        total["clear_m"] += clear_fraction * length
    return {
        "scene_id": spec.scene_id,
        "aoi": aoi_id,
        "acquired": spec.acquired.isoformat().replace("+00:00", "Z"),
        "shift_m": [spec.shift_m[0], spec.shift_m[1]],
        "shift_note": "image content is displaced by shift_m (east, north) from its true position",
        "tracks": tracks,
        "total": {
            "occupied_m": round(float(total["occupied_m"]), 2),
            "cars": int(total["cars"]),
            "cars_clear": int(total["cars_clear"]),
            "clear_fraction": round(float(total["clear_m"] / max(float(total["length_m"]), 1e-9)), 4),
        },
        **extra,
    }
