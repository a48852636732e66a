"""Scenes behind plain HTTP(S) URLs: ranged reads where the server serves ranges (a signed URL
to the S3 server, a range-capable file server), a bounded temporary copy where it cannot
(Python's file server)."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import S3

from railwatch.adapters.raster import decode_raster
from railwatch.adapters.sources import readable
from railwatch.adapters.store import LocalStore
from railwatch.aoi import load_aoi
from railwatch.errors import SceneError, StorageError
from railwatch.grid import aoi_grid
from railwatch.ingest import clip_scene
from railwatch.settings import get_settings
from tests.rasters import scene_ref, source_scene
from tests.servers import CountingProxy, PlainFileServer, RangeFileServer

REPO = Path(__file__).resolve().parents[1]
AOI = load_aoi(REPO / "aois" / "tumangang.geojson")
GRID = aoi_grid(AOI)


def test_a_server_without_ranges_is_streamed_to_a_temporary_file_then_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = source_scene(GRID)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "image.tif").write_bytes(scene.image_cog())
    (tmp_path / "www" / "udm2.tif").write_bytes(scene.mask_cog())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    server = PlainFileServer(tmp_path / "www")
    store = LocalStore(tmp_path / "store")
    try:
        ref = scene_ref(f"{server.url}/image.tif?token=abc", f"{server.url}/udm2.tif")
        clip = clip_scene(ref, AOI, GRID, store)
        np.testing.assert_array_equal(decode_raster(store.get_bytes(clip.image_key)),
                                      scene.window(GRID))
        assert decode_raster(store.get_bytes(clip.mask_key))[0, 10:60, 100:200].max() == 0
        assert list(scratch.iterdir()) == []  # the temporary copies are gone

        monkeypatch.setenv("RAILWATCH_STREAM_MAX_MB", "0.5")  # the disk bound holds
        get_settings.cache_clear()
        with pytest.raises(SceneError, match=r"image\.tif: .* exceeds RAILWATCH_STREAM_MAX_MB") as e:
            clip_scene(ref, AOI, GRID, LocalStore(tmp_path / "other"))
        assert "token" not in str(e.value)  # signed URLs' secrets stay out of messages
        assert list(scratch.iterdir()) == []
        with pytest.raises(SceneError, match=r"missing\.tif: HTTP 404"):
            clip_scene(scene_ref(f"{server.url}/missing.tif"), AOI, GRID, store)
    finally:
        get_settings.cache_clear()
        server.stop()


def test_a_signed_url_with_ranges_is_read_in_part(s3_via_proxy: S3, s3_proxy: CountingProxy,
                                                  tmp_path: Path) -> None:
    scene = source_scene(GRID, pad=300)  # the AOI grid is ≈ 27 % of this scene
    data = scene.image_cog()
    bucket = s3_via_proxy.new_bucket("source")
    s3_via_proxy.client.put_object(Bucket=bucket, Key="image.tif", Body=data)
    url = s3_via_proxy.client.generate_presigned_url("get_object", Params={"Bucket": bucket,
                                                                           "Key": "image.tif"})
    s3_proxy.traffic.clear()
    store = LocalStore(tmp_path / "store")

    clip = clip_scene(scene_ref(url), AOI, GRID, store)

    np.testing.assert_array_equal(decode_raster(store.get_bytes(clip.image_key)), scene.window(GRID))
    statuses = {e.status for e in s3_proxy.traffic.exchanges if e.method == "GET"}
    assert statuses == {206}  # every read was a range
    assert s3_proxy.traffic.received("GET") < 0.6 * len(data)


def test_a_range_capable_file_server_is_read_in_part(tmp_path: Path) -> None:
    scene = source_scene(GRID, pad=300)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "image.tif").write_bytes(scene.image_cog())
    server = RangeFileServer(tmp_path / "www")
    try:
        clip = clip_scene(scene_ref(f"{server.url}/image.tif"), AOI, GRID, LocalStore(tmp_path / "s"))
        image = decode_raster(LocalStore(tmp_path / "s").get_bytes(clip.image_key))
    finally:
        server.stop()
    np.testing.assert_array_equal(image, scene.window(GRID))
    assert {e.status for e in server.traffic.exchanges if e.method == "GET"} == {206}
    assert server.traffic.received("GET") < 0.6 * (tmp_path / "www" / "image.tif").stat().st_size


@pytest.mark.parametrize(("status", "error"), [(400, SceneError), (403, SceneError), (410, SceneError),
                                               (429, StorageError), (503, StorageError)])
def test_an_expired_url_fails_the_scene_and_a_server_error_may_pass(
        tmp_path: Path, status: int, error: type[Exception]) -> None:
    """An expired signed URL (S3 answers 403, GCS 400 ExpiredToken) will not work on a retry of
    the same URL: the scene fails, and the next run asks its catalog for a fresh one."""
    (tmp_path / "image.tif").write_bytes(b"II*\x00")
    server = RangeFileServer(tmp_path, refuse=lambda path: status)
    try:
        with pytest.raises(error, match=rf"image\.tif: HTTP {status}") as e, \
                readable(f"{server.url}/image.tif?token=secret", 10**6):
            pass
        assert "secret" not in str(e.value)
    finally:
        server.stop()


def test_a_refused_read_raises_an_error_that_crosses_process_boundaries(tmp_path: Path) -> None:
    """Errors travel back from Dask workers pickled: no open response may hang on them."""
    import pickle

    from tests.servers import RangeFileServer

    (tmp_path / "a.tif").write_bytes(b"x" * 10)
    server = RangeFileServer(tmp_path, refuse=lambda path: 503)
    try:
        with pytest.raises(StorageError) as info, readable(f"{server.url}/a.tif", 10**6):
            pass
        assert "HTTP 503" in str(pickle.loads(pickle.dumps(info.value)))
    finally:
        server.stop()


@pytest.mark.timeout(120)  # without a stall limit the read waits forever: this fails it
def test_a_server_that_goes_silent_mid_read_fails_the_scene_instead_of_hanging(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that answers the range probe and then leaves GDAL's requests open and silent:
    the read gives up after GDAL_HTTP_LOW_SPEED_TIME (30 s by default, 1 s here) and the scene
    fails with a transient error naming the file, which a retry may pass."""
    (tmp_path / "image.tif").write_bytes(source_scene(GRID).image_cog())
    answered = itertools.count()
    server = RangeFileServer(tmp_path, stall=lambda path: next(answered) >= 1)  # all but the probe
    monkeypatch.setenv("GDAL_HTTP_LOW_SPEED_TIME", "1")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    try:
        with pytest.raises(StorageError, match=r"image\.tif: .*(too slow|timed out)"):
            clip_scene(scene_ref(f"{server.url}/image.tif"), AOI, GRID, LocalStore(tmp_path / "store"))
        assert server.traffic.count("GET") == 1  # the probe; GDAL's requests were left unanswered
    finally:
        server.stop()
