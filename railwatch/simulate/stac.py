"""STAC metadata of the simulated catalog: PlanetScope-like Items and their Collection.

The catalog is static and self-contained (relative links), so it can be read from a folder,
copied to object storage, or loaded into a STAC API exactly like a real provider's catalog.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pystac
from pyproj import Transformer
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.view import ViewExtension
from shapely.geometry import mapping
from shapely.ops import transform as shapely_transform

from railwatch.simulate.scene import SceneSpec

COLLECTION_ID = "railwatch-sim-psscene"
COLLECTION_FILE = "collection.json"
ANALYTIC_BANDS = (  # PlanetScope SuperDove equivalents of the classic 4-band product
    ("blue", "blue", 0.49, 0.05),
    ("green", "green", 0.565, 0.036),
    ("red", "red", 0.665, 0.031),
    ("nir", "nir", 0.865, 0.04),
)
_LINKS_UP = [
    {"rel": rel, "href": f"../{COLLECTION_FILE}", "type": "application/json"}
    for rel in ("root", "parent", "collection")
]


def build_item(
    spec: SceneSpec, cloud_percent: float, clear_percent: float, assets: dict[str, str]
) -> dict[str, Any]:
    """The Item JSON of one scene; `assets` maps asset keys to hrefs relative to the item."""
    to_lonlat = Transformer.from_crs(spec.crs, "EPSG:4326", always_xy=True)
    footprint = shapely_transform(to_lonlat.transform, spec.footprint)
    item = pystac.Item(
        id=spec.scene_id,
        geometry=mapping(footprint),
        bbox=[round(v, 7) for v in footprint.bounds],
        datetime=spec.acquired,
        properties={
            "created": _iso(spec.published),
            "updated": _iso(spec.published),
            "gsd": spec.gsd_m,
            "platform": spec.satellite,
            "constellation": "planetscope",
            "instruments": ["PSB.SD"],
            "pl:item_type": "PSScene",
            "pl:quality_category": "standard",
            "pl:publishing_stage": "finalized",
            "pl:clear_percent": round(clear_percent, 2),
        },
        collection=COLLECTION_ID,
    )
    eo = EOExtension.ext(item, add_if_missing=True)
    eo.cloud_cover = round(cloud_percent, 2)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = spec.crs
    proj.shape = [spec.height, spec.width]
    proj.transform = [round(v, 6) for v in list(spec.transform)[:6]]
    view = ViewExtension.ext(item, add_if_missing=True)
    view.sun_azimuth, view.sun_elevation, view.off_nadir = (
        spec.sun_azimuth,
        spec.sun_elevation,
        spec.off_nadir,
    )

    analytic = pystac.Asset(
        assets["analytic"],
        title="Surface reflectance, 4 bands (× 10000)",
        media_type=pystac.MediaType.COG,
        roles=["data"],
    )
    item.add_asset("analytic", analytic)
    EOExtension.ext(analytic, add_if_missing=True).bands = [
        Band.create(name=n, common_name=c, center_wavelength=w, full_width_half_max=f)
        for n, c, w, f in ANALYTIC_BANDS
    ]
    item.add_asset(
        "udm2",
        pystac.Asset(
            assets["udm2"],
            title="Usable data mask (UDM2 layout)",
            media_type=pystac.MediaType.COG,
            roles=["data-mask"],
        ),
    )
    item.add_asset(
        "truth",
        pystac.Asset(
            assets["truth"],
            title="Simulation ground truth",
            media_type=pystac.MediaType.JSON,
            roles=["metadata"],
        ),
    )
    if "thumbnail" in assets:
        item.add_asset(
            "thumbnail",
            pystac.Asset(
                assets["thumbnail"], title="Thumbnail", media_type=pystac.MediaType.PNG, roles=["thumbnail"]
            ),
        )
    doc = item.to_dict(include_self_link=False, transform_hrefs=False)
    doc["links"] = [dict(link) for link in _LINKS_UP]
    return doc


def build_collection(out_dir: Path) -> dict[str, Any]:
    """The Collection JSON listing every complete Item found under `out_dir`, sorted by id."""
    items = []
    for path in sorted(out_dir.glob("*/*.json")):
        if path.stem != path.parent.name:
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("type") == "Feature":
            items.append(doc)
    bboxes = [d["bbox"] for d in items] or [[-180.0, -90.0, 180.0, 90.0]]
    times = sorted(_parse(d["properties"]["datetime"]) for d in items)
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="railwatch simulated PlanetScope scenes",
        description="Scenes rendered by railwatch's built-in simulator: 4-band surface reflectance "
        "(blue, green, red, nir) × 10000 at 3 m with a UDM2-like mask and a ground-truth file.",
        extent=pystac.Extent(
            pystac.SpatialExtent(
                [
                    [
                        min(b[0] for b in bboxes),
                        min(b[1] for b in bboxes),
                        max(b[2] for b in bboxes),
                        max(b[3] for b in bboxes),
                    ]
                ]
            ),
            pystac.TemporalExtent([[times[0] if times else None, times[-1] if times else None]]),
        ),
        license="CC0-1.0",
        summaries=pystac.Summaries(
            {
                "constellation": ["planetscope"],
                "platform": sorted({d["properties"]["platform"] for d in items}),
                "instruments": ["PSB.SD"],
                "gsd": sorted({d["properties"]["gsd"] for d in items}),
            }
        ),
    )
    doc = collection.to_dict(include_self_link=False, transform_hrefs=False)
    doc["links"] = [{"rel": "root", "href": f"./{COLLECTION_FILE}", "type": "application/json"}] + [
        {"rel": "item", "href": f"./{d['id']}/{d['id']}.json", "type": "application/geo+json"} for d in items
    ]
    return doc


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
