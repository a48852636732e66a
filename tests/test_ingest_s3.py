"""Ingestion against a real S3 protocol server (moto's server mode on loopback): scenes are read
with GDAL /vsis3/ from a "source" bucket, clips written with boto3 to a "clips" bucket."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import S3

from railwatch.adapters.raster import decode_raster, gdal_env, read_on_grid
from railwatch.adapters.s3 import S3Config
from railwatch.adapters.store import S3Store, open_store
from railwatch.aoi import AOI, load_aoi
from railwatch.errors import ConfigError, SceneError, StorageError
from railwatch.grid import AOIGrid, aoi_grid
from railwatch.ingest import clip_scene
from railwatch.settings import get_settings
from tests.rasters import SourceScene, scene_ref, source_scene
from tests.servers import CountingProxy, MotoServer

REPO = Path(__file__).resolve().parents[1]
CLIP_FILES = ("image.tif", "mask.tif", "item.json")


@pytest.fixture(scope="module")
def aoi() -> AOI:
    return load_aoi(REPO / "aois" / "tumangang.geojson")


@pytest.fixture(scope="module")
def grid(aoi: AOI) -> AOIGrid:
    return aoi_grid(aoi)


@pytest.fixture(scope="module")
def scene(grid: AOIGrid) -> SourceScene:
    return source_scene(grid)


def upload(s3: S3, scene: SourceScene, name: str = "scene") -> tuple[str, str]:
    """The scene's image and mask as objects of a new source bucket; their s3:// hrefs."""
    bucket = s3.new_bucket("source")
    s3.client.put_object(Bucket=bucket, Key=f"{name}/image.tif", Body=scene.image_cog())
    s3.client.put_object(Bucket=bucket, Key=f"{name}/udm2.tif", Body=scene.mask_cog())
    return f"s3://{bucket}/{name}/image.tif", f"s3://{bucket}/{name}/udm2.tif"


def keys(s3: S3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_clip_from_s3_equals_a_local_read_pixel_for_pixel(s3: S3, aoi: AOI, grid: AOIGrid,
                                                          scene: SourceScene, tmp_path: Path) -> None:
    image_href, mask_href = upload(s3, scene)
    store = S3Store(s3.new_bucket("clips"), "archive", s3=s3.config)

    clip = clip_scene(scene_ref(image_href, mask_href), aoi, grid, store, s3=s3.config)

    prefix = "archive/tumangang/2023/09/05/simulator-20230905_013412_43_24a3"
    assert sorted(keys(s3, store.bucket)) == sorted(f"{prefix}/{f}" for f in CLIP_FILES)
    image = decode_raster(store.get_bytes(clip.image_key))
    local = tmp_path / "scene.tif"
    local.write_bytes(scene.image_cog())
    with gdal_env():
        direct, _ = read_on_grid(str(local), grid, (1, 2, 3, 4))
    np.testing.assert_array_equal(image, direct)
    np.testing.assert_array_equal(image, scene.window(grid))
    mask = decode_raster(store.get_bytes(clip.mask_key))[0]
    assert mask[10:60, 100:200].max() == 0 and mask.sum() == mask.size - 50 * 100


def test_clips_of_every_date_stack_on_the_aoi_grid(s3: S3, aoi: AOI, grid: AOIGrid) -> None:
    store = S3Store(s3.new_bucket("clips"), s3=s3.config)
    for day, pad in ((5, 40), (6, 17), (7, 63)):  # scenes with other extents and origins
        image_href, _ = upload(s3, source_scene(grid, seed=day, pad=pad), name=f"d{day}")
        clip = clip_scene(scene_ref(image_href, day=day, scene_id=f"s{day}"), aoi, grid, store,
                          s3=s3.config)
        with gdal_env(**s3.config.gdal_options()):
            import rasterio

            with rasterio.open(store.gdal_path(clip.image_key)) as src:
                assert src.crs.to_string() == grid.crs
                assert src.transform == grid.transform
                assert (src.width, src.height) == (grid.width, grid.height)


def test_rerun_writes_nothing_new(s3_via_proxy: S3, s3_proxy: CountingProxy, aoi: AOI,
                                  grid: AOIGrid, scene: SourceScene) -> None:
    image_href, mask_href = upload(s3_via_proxy, scene)
    store = S3Store(s3_via_proxy.new_bucket("clips"), s3=s3_via_proxy.config)
    ref = scene_ref(image_href, mask_href)
    clip_scene(ref, aoi, grid, store, s3=s3_via_proxy.config)
    s3_proxy.traffic.clear()

    clip_scene(ref, aoi, grid, store, s3=s3_via_proxy.config)

    assert s3_proxy.traffic.count("PUT") == 0
    assert s3_proxy.traffic.count("HEAD") == len(CLIP_FILES)  # one look per object, then skipped


def test_interrupted_upload_leaves_no_partial_clip_and_a_rerun_completes_it(
        s3: S3, s3_via_proxy: S3, s3_proxy: CountingProxy, aoi: AOI, grid: AOIGrid,
        scene: SourceScene) -> None:
    image_href, mask_href = upload(s3, scene)
    ref = scene_ref(image_href, mask_href)
    bucket = s3.new_bucket("clips")
    store = S3Store(bucket, s3=s3_via_proxy.config)

    s3_proxy.die_during_put(1)  # the server goes away half way through the image
    with pytest.raises(StorageError, match="rerun") as info:
        clip_scene(ref, aoi, grid, store, s3=s3.config)
    assert "\n" not in str(info.value)
    assert keys(s3, bucket) == []  # nothing visible, not even a truncated image

    s3_proxy.revive()
    s3_proxy.die_during_put(2)  # this time half way through the second of image and mask
    with pytest.raises(StorageError):
        clip_scene(ref, aoi, grid, store, s3=s3.config)
    [complete] = keys(s3, bucket)  # one complete file, no item: the clip is not there
    assert complete.rsplit("/", 1)[1] in ("image.tif", "mask.tif")

    s3_proxy.revive()
    s3_proxy.traffic.clear()
    clip_scene(ref, aoi, grid, store, s3=s3.config)
    assert s3_proxy.traffic.count("PUT") == 2  # the other file and the item; the first is kept
    assert sorted(k.rsplit("/", 1)[1] for k in keys(s3, bucket)) == sorted(CLIP_FILES)


@pytest.mark.usefixtures("fake_aws_env")
def test_s3_server_stopped_mid_run_is_a_clear_storage_error(aoi: AOI, grid: AOIGrid,
                                                           scene: SourceScene) -> None:
    server = MotoServer().start()
    try:
        s3 = S3Config(endpoint_url=server.endpoint)
        client = s3.client()
        client.create_bucket(Bucket="source")
        client.put_object(Bucket="source", Key="image.tif", Body=scene.image_cog())
        client.create_bucket(Bucket="clips")
        store = S3Store("clips", s3=s3)
        store.client.meta.events.register("before-send.s3.PutObject", lambda **_: server.stop())
        with pytest.raises(StorageError, match=f"endpoint {server.endpoint} is unreachable"):
            clip_scene(scene_ref("s3://source/image.tif"), aoi, grid, store, s3=s3)
    finally:
        server.stop()


def test_missing_bucket_and_missing_scene_are_one_line_errors(s3: S3, aoi: AOI, grid: AOIGrid,
                                                              scene: SourceScene) -> None:
    image_href, _ = upload(s3, scene)
    store = S3Store("no-such-bucket", s3=s3.config)
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist at http://127") as e:
        clip_scene(scene_ref(image_href), aoi, grid, store, s3=s3.config)
    assert "\n" not in str(e.value)
    missing = image_href.replace("image.tif", "nothing.tif")
    with pytest.raises(SceneError, match=r"nothing\.tif: cannot read the raster"):
        clip_scene(scene_ref(missing), aoi, grid, store, s3=s3.config)


def test_endpoint_and_store_come_from_the_settings(s3: S3, aoi: AOI, grid: AOIGrid, scene: SourceScene,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    image_href, _ = upload(s3, scene)
    bucket = s3.new_bucket("clips")
    monkeypatch.setenv("RAILWATCH_S3_ENDPOINT_URL", s3.config.endpoint_url or "")
    monkeypatch.setenv("RAILWATCH_STORE", f"s3://{bucket}/p")
    get_settings.cache_clear()
    try:
        store = open_store(get_settings().store_url)  # no endpoint passed: the settings' one
        clip = clip_scene(scene_ref(image_href), aoi, grid, store)
        assert store.uri(clip.image_key).startswith(f"s3://{bucket}/p/tumangang/")
        assert len(keys(s3, bucket)) == len(CLIP_FILES)
    finally:
        get_settings.cache_clear()
    with pytest.raises(ConfigError, match="RAILWATCH_S3_ENDPOINT_URL like http://host:port"):
        S3Config(endpoint_url="127.0.0.1:9000")


@pytest.mark.usefixtures("fake_aws_env")
def test_wrong_credentials_are_a_one_line_error_naming_the_variables(
        aoi: AOI, grid: AOIGrid, scene: SourceScene) -> None:
    import boto3

    # three set-up calls go through unchecked, then every request's keys are checked
    server = MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}).start()
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint)
        iam.create_user(UserName="railwatch")
        key = iam.create_access_key(UserName="railwatch")["AccessKey"]
        owner = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=key["AccessKeyId"],
                             aws_secret_access_key=key["SecretAccessKey"])
        owner.create_bucket(Bucket="clips")
        store = S3Store("clips", s3=S3Config(endpoint_url=server.endpoint))  # the "testing" keys
        with pytest.raises(ConfigError, match=r"access denied .* check AWS_ACCESS_KEY_ID") as e:
            store.put_bytes("tumangang/x.tif", b"data")
        assert "\n" not in str(e.value)
    finally:
        server.stop()
