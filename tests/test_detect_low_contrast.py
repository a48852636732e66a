"""A grey train on a hazy day, through the `railwatch detect` path: the simulator's low-contrast
case 9 (3 m, an empty reference, the sun known), where a 157 m grey train on siding t2 has a
paler stretch in its middle.

The self-check compares evidence with the scene's own ballast and keeps a train's strongly
changed samples out of that ballast. The paler stretch changed less than that: left in, it
became the ballast under the middle of the train, which then split into three pieces and lost
four of its eleven cars.
"""

from __future__ import annotations

import pytest

from bench.detect_accuracy import REFERENCE_INDEX, SETS, scene_sun
from railwatch.aoi import load_aoi
from railwatch.detect import detect_files
from railwatch.simulate.cases import publish_case
from railwatch.simulate.publish import SimulatedScene

AOI_PATH, SCENE_M = SETS[3.0]  # the accuracy bench's 3 m cases, its empty reference


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulatedScene, SimulatedScene]:
    out = tmp_path_factory.mktemp("cases")
    aoi = load_aoi(AOI_PATH)
    reference = publish_case(aoi, out, "empty", REFERENCE_INDEX, 3.0, scene_size_m=SCENE_M)
    scene = publish_case(aoi, out, "low_contrast", 9, 3.0, scene_size_m=SCENE_M)
    return scene, reference


def test_grey_train_with_a_paler_stretch_is_one_train(
    cases: tuple[SimulatedScene, SimulatedScene],
) -> None:
    scene, reference = cases
    result = detect_files(AOI_PATH, str(scene.image_path), str(reference.image_path),
                          str(scene.mask_path), str(reference.mask_path), None, *scene_sun(scene))
    truth = {t["id"]: t for t in scene.truth["tracks"]}["t2"]
    assert len(truth["segments"]) == 1 and truth["cars"] >= 10  # the case is what it says
    t2 = next(t for t in result["tracks"] if t["id"] == "t2")
    assert abs(t2["occupied_m"] - truth["occupied_m"]) <= 0.1 * truth["occupied_m"], t2
    assert abs(t2["cars"] - truth["cars"]) <= 1, (t2, truth["cars"])
    assert abs(result["total"]["cars"] - scene.truth["total"]["cars"]) <= 1, result["total"]
