"""What lies between the ground and the sensor: clouds, their shadows, haze, gain, noise.

Also the UDM2-like usable-data mask, derived from the very fields that drew the clouds (then
dilated a little, as Planet's is), so "clear" in the mask means clear in the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import maximum_filter
from scipy.special import ndtri

from railwatch.simulate.noise import fbm, lattice_field, smoothstep
from railwatch.simulate.raster import F32, F64
from railwatch.simulate.scene import SceneSpec
from railwatch.simulate.terrain import SHADE

CLOUD_OCTAVES = ((1800.0, 1.0), (650.0, 0.7), (230.0, 0.45), (80.0, 0.22), (30.0, 0.09))
CLOUD_SOFTNESS = 0.3  # field units over which a cloud edge fades
CLOUD_TINT = (1.0, 0.99, 0.975, 0.95)
# UDM2 bands in Planet's order
UDM2_BANDS = ("clear", "snow", "shadow", "haze_light", "haze_heavy", "cloud", "confidence", "udm1")
CLOUD_ALPHA, HEAVY_ALPHA, LIGHT_ALPHA, SHADOW_LEVEL = 0.5, 0.25, 0.06, 0.25
MASK_DILATION_PX = 2
# Gaussian quantiles for 8-bit random indices: normal noise at a fraction of the cost of
# `standard_normal` (10 M draws per scene), truncated at ±2.9σ, std rescaled to 1.
_GAUSS = ndtri((np.arange(256) + 0.5) / 256.0)
_GAUSS = (_GAUSS / _GAUSS.std()).astype(np.float32)


@dataclass(frozen=True)
class Sky:
    """Cloud opacity, cloud brightness and cloud-shadow strength per pixel (0..1)."""

    alpha: F32
    brightness: F32
    shadow: F32


def footprint_mask(spec: SceneSpec, xs: F64, ys: F64) -> NDArray[np.bool_]:
    """Pixels inside the tilted valid-data frame (outside is nodata, as in a PSScene)."""
    ring = np.asarray(spec.footprint.exterior.coords)[:4]
    cx, cy = ring.mean(axis=0)
    ex, ey = ring[1] - ring[0], ring[3] - ring[0]
    half_w, half_h = np.hypot(*ex) / 2, np.hypot(*ey) / 2
    ux, uy = ex / (2 * half_w)
    x = (xs - cx).astype(np.float32)[None, :]
    y = (ys - cy).astype(np.float32)[:, None]
    u = np.abs(x * np.float32(ux) + y * np.float32(uy))
    v = np.abs(y * np.float32(ux) - x * np.float32(uy))
    inside: NDArray[np.bool_] = (u <= half_w) & (v <= half_h)
    return inside


def clouds(spec: SceneSpec, xs: F64, ys: F64) -> Sky | None:
    """Smooth-noise clouds thresholded to the day's cover, plus their sun-offset shadows."""
    if spec.cloud_cover <= 0:
        return None
    key = spec.key + 101
    field = fbm(xs, ys, CLOUD_OCTAVES, key)
    sample = field[::7, ::7]
    level = float(np.quantile(sample, 1.0 - spec.cloud_cover))
    alpha = smoothstep(np.float32(0.5) + (field - np.float32(level)) / np.float32(CLOUD_SOFTNESS))
    brightness = 0.36 + 0.34 * smoothstep((field - np.float32(level)) / np.float32(1.2))
    # a cloud at height h hides the sun from the ground h / tan(elevation) away from the sun
    az, el = math.radians(spec.sun_azimuth), math.radians(max(spec.sun_elevation, 5.0))
    off = spec.cloud_height_m / math.tan(el)
    ox, oy = -math.sin(az) * off, -math.cos(az) * off
    cast = fbm(xs - ox, ys - oy, CLOUD_OCTAVES, key)
    shadow = smoothstep(np.float32(0.5) + (cast - np.float32(level)) / np.float32(CLOUD_SOFTNESS))
    return Sky(alpha, brightness.astype(np.float32), shadow)


def observe(
    refl: F32, spec: SceneSpec, sky: Sky | None, valid: NDArray[np.bool_], xs: F64, ys: F64
) -> NDArray[np.uint16]:
    """Ground reflectance → delivered uint16 surface reflectance × 10000 (0 = nodata).

    Residual haze after atmospheric correction is additive and bluish; per-date gain errors
    and sensor noise (part constant, part signal-dependent) come on top.
    """
    veil = 0.75 + 0.25 * lattice_field(xs, ys, 2500.0, spec.key + 102)
    noise_rng = np.random.default_rng([spec.key, 3])
    out = np.empty(refl.shape, dtype=np.uint16)
    for b in range(4):
        val = refl[b]
        if sky is not None:
            val = val * (1.0 - sky.shadow * np.float32(1.0 - SHADE[b]))
            val = val + sky.alpha * (sky.brightness * np.float32(CLOUD_TINT[b]) - val)
        val = (val + np.float32(spec.haze[b]) * veil) * np.float32(spec.gain[b])
        sigma = np.float32(0.0012) + np.float32(0.006) * val
        val = val + sigma * _GAUSS.take(noise_rng.integers(0, 256, val.shape, dtype=np.uint8))
        dn = np.clip(np.rint(val * np.float32(10000.0)), 1, 65535)
        out[b] = np.where(valid, dn, 0).astype(np.uint16)
    return out


def udm2(sky: Sky | None, valid: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """An 8-band UDM2-like mask (see `UDM2_BANDS`); class bands are mutually exclusive."""
    mask = np.zeros((8, *valid.shape), dtype=np.uint8)
    if sky is None:
        mask[0] = valid
        mask[6] = np.where(valid, 100, 0)
        mask[7] = ~valid
        return mask
    a, sh = sky.alpha, sky.shadow
    cloud = a > CLOUD_ALPHA
    heavy = ~cloud & (a > HEAVY_ALPHA)
    light = ~cloud & ~heavy & (a > LIGHT_ALPHA)
    shadow = ~(cloud | heavy | light) & (sh > SHADOW_LEVEL)
    unusable = cloud | heavy | light | shadow
    size = 2 * MASK_DILATION_PX + 1
    buffered = maximum_filter(unusable.view(np.uint8), size=size).astype(bool)
    light |= buffered & ~unusable
    # how sure the classifier is: least sure where a field sits at its class threshold
    p = np.where(shadow, sh, a)
    confidence = np.rint(100.0 - 240.0 * p * (1.0 - p)).clip(40, 100)
    for band, layer in ((0, ~buffered), (2, shadow), (3, light), (4, heavy), (5, cloud)):
        mask[band] = layer & valid
    mask[6] = np.where(valid, confidence, 0)
    mask[7] = np.where(valid, np.where(cloud, 2, 0), 1)
    return mask
