"""Shared synthetic scenes for the detection core's tests (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from railwatch.core import TrackLine

from .synth import Train, Yard, truth


@dataclass
class Scene:
    """An image, its mask, the reference (empty yard) and what really stands on the tracks."""

    yard: Yard
    trains: tuple[Train, ...]
    image: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    reference: npt.NDArray[np.float32]
    reference_valid: npt.NDArray[np.bool_]
    truth: dict[str, dict[str, Any]]

    @property
    def tracks(self) -> list[TrackLine]:
        return self.yard.tracks()


# Main case. Tracks t1..t5 from the sun side; car shadows fall on the next track (t_k -> t_k+1).
# t2 dark 50-194 m shades t3 there (t3 empty there); t4 bright 120-235 m shades t5 (empty);
# t3 rust/blue 260-346 m; t1 ballast-grey 250-322 m shades t2 (empty there).
MAIN_TRAINS = (
    Train(1, 50.0, 10, "dark"),
    Train(3, 120.0, 8, "bright"),
    Train(2, 260.0, 6, ("rust", "blue")),
    Train(0, 250.0, 5, "grey"),
)


@pytest.fixture(scope="session")
def yard() -> Yard:
    return Yard()


@pytest.fixture(scope="session")
def reference(yard: Yard) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """The empty yard, slightly misregistered itself (as any real reference is)."""
    return yard.render((), shift_px=(0.2, -0.15), seed=101)


def make_scene(
    yard: Yard,
    reference: tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]],
    trains: tuple[Train, ...],
    **render: Any,
) -> Scene:
    image, valid = yard.render(trains, **render)
    return Scene(yard, trains, image, valid, reference[0], reference[1],
                 truth(trains, yard.n_tracks))


@pytest.fixture(scope="session")
def main_scene(
    yard: Yard, reference: tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]
) -> Scene:
    """Loaded yard, shifted by (1.3, -0.8) px, hazier and brighter than the reference."""
    return make_scene(
        yard, reference, MAIN_TRAINS, shift_px=(1.3, -0.8), gain=(0.93, 0.95, 0.97, 1.04),
        offset=(160.0, 120.0, 80.0, 30.0), seed=7,
    )
