"""The built-in scene simulator: PlanetScope-like scenes of an AOI (or finer, SkySat-like ones),
published as static STAC.

`publish_season` renders one scene per day (fields, ballast, rail cars and their shadows,
clouds, haze, noise, misregistration) with a UDM2-like mask and a ground-truth file, and lists
them in a STAC Collection that railwatch reads like any real catalog.
"""

from railwatch.simulate.publish import SimulatedScene, publish_season
from railwatch.simulate.scene import default_scene_size_m

__all__ = ["SimulatedScene", "default_scene_size_m", "publish_season"]
