"""The background model in the store: written once per change, byte-stable, and recoverable.

The pipeline's own I/O layer (railwatch.background) on a local-folder store with stored
profiles, as the update and detection tasks use it, without the Prefect/Dask machinery (the
end-to-end test covers that).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import railwatch.background as bgm
from railwatch.adapters.profiles import background_key, encode_profiles, profile_key
from railwatch.adapters.store import LocalStore
from railwatch.core import Alignment, TrackProfile
from railwatch.core.background import BackgroundParams, background_at, build_model
from railwatch.models import ClipRef, SceneRef

DAY0 = datetime(2023, 9, 1, tzinfo=UTC)


def clip(day: int, valid_fraction: float = 1.0) -> ClipRef:
    acquired = DAY0 + timedelta(days=day)
    scene = SceneRef(source="sim", scene_id=f"s{day:03d}", acquired=acquired,
                     image_href=f"/x/{day}.tif", image_bands=(1, 2, 3, 4))
    folder = f"yard/{acquired:%Y/%m/%d}/sim-s{day:03d}"
    return ClipRef(aoi_id="yard", scene=scene, image_key=f"{folder}/image.tif",
                   mask_key=f"{folder}/mask.tif", valid_fraction=valid_fraction)


def measured(store: LocalStore, days: range, cloudy: frozenset[int] = frozenset()) -> list[ClipRef]:
    """Clips with stored profiles, as the measure step leaves them (values vary by day)."""
    rng = np.random.default_rng(0)
    clips = []
    for day in days:
        c = clip(day, 0.4 if day in cloudy else 1.0)
        profiles = {t: TrackProfile(t, 1.0, rng.normal(100, 5, (n, 4)).astype(np.float32),
                                    np.ones(n, bool), np.zeros((n, 2)), np.ones(n, bool))
                    for t, n in (("a", 25), ("b", 40))}
        store.put_bytes(profile_key(c), encode_profiles(profiles, Alignment.identity(4)))
        clips.append(c)
    return clips


def test_update_is_stable_and_a_lost_or_corrupt_model_is_rebuilt(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    clips = measured(store, range(30), cloudy=frozenset({3, 7}))
    path = tmp_path / "store" / background_key("yard")

    first = bgm.update_model("yard", clips[:20], clips[:20], store)
    assert path.is_file() and first.written and first.rebuilt is None  # a new AOI: no warning
    assert first.scenes == 18  # the two cloudy scenes are not in it
    first_bytes, mtime = path.read_bytes(), path.stat().st_mtime_ns

    again = bgm.update_model("yard", clips[:20], clips[:20], store)  # a rerun: nothing to do
    assert not again.written and again.revision == first.revision
    assert path.stat().st_mtime_ns == mtime

    # the rest, newest first (a backfill behind a live run): same bytes as in one go
    for c in reversed(clips[20:]):
        bgm.update_model("yard", [c], clips, store)
    full = path.read_bytes()
    other = LocalStore(tmp_path / "other")
    measured(other, range(30), cloudy=frozenset({3, 7}))
    bgm.update_model("yard", clips, clips, other)
    assert (tmp_path / "other" / background_key("yard")).read_bytes() == full
    assert full != first_bytes

    path.unlink()  # lost: rebuilt from the stored profiles, byte for byte, with a reason
    lost = bgm.update_model("yard", clips[-1:], clips, store)
    assert lost.rebuilt == "missing" and path.read_bytes() == full
    path.write_bytes(full[: len(full) // 2])  # torn / corrupt bytes
    torn = bgm.update_model("yard", clips[-1:], clips, store)
    assert torn.rebuilt is not None and "unreadable" in torn.rebuilt
    assert path.read_bytes() == full

    # detection (read-only) reads the stored model, or rebuilds it in memory when unusable
    assert bgm.Backgrounds("yard", clips, store).problem is None
    path.write_bytes(b"not a model")
    backgrounds = bgm.Backgrounds("yard", clips, store)
    assert backgrounds.problem is not None and backgrounds.model.revision == lost.revision
    assert path.read_bytes() == b"not a model"


def test_backgrounds_behind_the_ring_come_from_the_stored_profiles(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = BackgroundParams(window=4, capacity=6, min_scenes=2)
    monkeypatch.setattr(bgm, "PARAMS", params)
    store = LocalStore(tmp_path / "store")
    clips = measured(store, range(16), cloudy=frozenset({5}))
    bgm.update_model("yard", clips, clips, store)
    backgrounds = bgm.Backgrounds("yard", clips, store)
    assert len(backgrounds.model.entries) == 6
    everything = build_model((bgm.read_scene(c, store) for c in clips), "x", params, capacity=100)
    for day in (1, 3, 8, 11, 15, 40):  # before, inside and beyond what the ring holds
        at = DAY0 + timedelta(days=day)
        got, expect = backgrounds.at(at), background_at(everything, at, params)
        assert got.scenes == expect.scenes and got.digest == expect.digest, day
        if expect.profiles is not None:
            assert got.profiles is not None
            assert all(np.array_equal(got.profiles[t].values, expect.profiles[t].values,
                                      equal_nan=True) for t in expect.profiles)


def test_first_days_use_the_first_clear_scenes_without_themselves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Too little history before a scene: the AOI's first `early_scenes` clear scenes other
    than it (none of it from a cloudy scene), once that many exist; the reference before."""
    params = BackgroundParams(window=4, capacity=6, min_scenes=2, early_scenes=3)
    monkeypatch.setattr(bgm, "PARAMS", params)
    store = LocalStore(tmp_path / "store")
    clips = measured(store, range(8), cloudy=frozenset({1}))
    key = bgm.scene_key
    # three clear scenes in all: a first day has only two others, so the reference serves
    few = bgm.Backgrounds("yard", clips[:4], store)
    assert few.of(clips[0]).profiles is None and few.of(clips[0]).digest == "reference"
    backgrounds = bgm.Backgrounds("yard", clips, store)
    first, second, third = (backgrounds.of(c) for c in clips[:3])
    assert first.scenes == tuple(key(clips[d]) for d in (2, 3, 4))  # not itself, not day 1
    assert second.scenes == tuple(key(clips[d]) for d in (0, 2, 3))  # cloudy day 1: its own
    assert third.scenes == tuple(key(clips[d]) for d in (0, 3, 4))   # background skips it too
    assert first.profiles is not None
    median = np.median([bgm.read_scene(clips[d], store).profiles["a"].values for d in (2, 3, 4)],
                       axis=0)
    assert np.allclose(first.profiles["a"].values, median)
    # with enough scenes before it (days 0 and 2), the usual background of earlier scenes
    assert backgrounds.of(clips[3]).scenes == (key(clips[0]), key(clips[2]))


def test_a_scene_among_the_first_clear_ones_revises_the_first_days(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bgm, "PARAMS", BackgroundParams(window=4, capacity=6, min_scenes=2,
                                                        early_scenes=3))
    history = [clip(d, 0.4 if d == 1 else 1.0) for d in range(12)]
    days = lambda got: [int(c.scene.scene_id[1:]) for c in got]  # noqa: E731
    # the first four clear scenes are days 0, 2, 3, 4: a new one among them revises days 0-4
    assert days(bgm.affected_clips([history[3]], history)) == list(range(12))
    assert days(bgm.affected_clips([history[4]], history[:5])) == [0, 1, 2, 3, 4]
    # after them, only itself and the later ones, as before
    assert days(bgm.affected_clips([history[8]], history)) == [8, 9, 10, 11]
    assert days(bgm.affected_clips([clip(13, 0.4)], [*history, clip(13, 0.4)])) == [13]


def test_profiles_and_model_are_stored_uncompressed_and_deflated_ones_still_load(tmp_path: Path) -> None:
    """Float spectra barely deflate, and deflating a year's model took 0.5 s of every update:
    both objects are written stored; those an earlier version wrote deflated still load."""
    import io
    import zipfile

    from railwatch.adapters.profiles import decode_model, decode_profiles, encode_model

    store = LocalStore(tmp_path / "store")
    clips = measured(store, range(8))
    bgm.update_model("yard", clips, clips, store)

    def deflated(data: bytes) -> bytes:  # the same members, as the earlier writer made them
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
        return out.getvalue()

    for key in (profile_key(clips[0]), background_key("yard")):
        data = store.get_bytes(key)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}, key
        old = deflated(data)
        assert len(old) < len(data)
        if key.endswith("model.npz"):
            assert encode_model(decode_model(old)) == data
        else:
            new_profiles, _ = decode_profiles(data)
            old_profiles, _ = decode_profiles(old)
            assert all(np.array_equal(new_profiles[t].values, old_profiles[t].values) for t in new_profiles)
