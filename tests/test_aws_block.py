"""S3 keys from a prefect-aws `AwsCredentials` block (RAILWATCH_AWS_CREDENTIALS_BLOCK): against a
moto server that checks keys, with wrong keys in the environment, the block's keys are used for
both the store (boto3) and the scene reads (GDAL /vsis3/)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from prefect.testing.utilities import prefect_test_harness

from railwatch.adapters.raster import decode_raster
from railwatch.adapters.s3 import credentials_block
from railwatch.adapters.store import open_store
from railwatch.aoi import AOI
from railwatch.errors import ConfigError
from railwatch.grid import aoi_grid
from railwatch.ingest import clip_scene
from railwatch.settings import get_settings
from tests.rasters import scene_ref, source_scene
from tests.servers import MotoServer

prefect_aws = pytest.importorskip("prefect_aws")


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    credentials_block.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
    credentials_block.cache_clear()


@pytest.mark.usefixtures("fake_aws_env")  # the environment's keys ("testing") are wrong here
def test_the_credentials_block_supplies_the_s3_keys(aoi: AOI, settings_env: pytest.MonkeyPatch) -> None:
    import boto3

    grid = aoi_grid(aoi)
    scene = source_scene(grid)
    server = MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}).start()  # then keys are checked
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint)
        iam.create_user(UserName="railwatch")
        iam.put_user_policy(UserName="railwatch", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="railwatch")["AccessKey"]
        owner = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=key["AccessKeyId"],
                             aws_secret_access_key=key["SecretAccessKey"])
        for bucket in ("source", "clips"):
            owner.create_bucket(Bucket=bucket)
        owner.put_object(Bucket="source", Key="image.tif", Body=scene.image_cog())
        settings_env.setenv("RAILWATCH_S3_ENDPOINT_URL", server.endpoint)
        settings_env.setenv("RAILWATCH_STORE", "s3://clips/archive")
        settings_env.setenv("RAILWATCH_AWS_CREDENTIALS_BLOCK", "railwatch-s3")
        with prefect_test_harness(server_startup_timeout=120):
            prefect_aws.AwsCredentials(aws_access_key_id=key["AccessKeyId"],
                                       aws_secret_access_key=key["SecretAccessKey"]).save("railwatch-s3")
            store = open_store(get_settings().store_url)

            clip = clip_scene(scene_ref("s3://source/image.tif"), aoi, grid, store)

            np.testing.assert_array_equal(decode_raster(store.get_bytes(clip.image_key)),
                                          scene.window(grid))
            settings_env.setenv("RAILWATCH_AWS_CREDENTIALS_BLOCK", "no-such-block")
            get_settings.cache_clear()
            with pytest.raises(ConfigError, match="no AwsCredentials block named 'no-such-block'"):
                open_store(get_settings().store_url).put_bytes("x", b"x")
            settings_env.delenv("RAILWATCH_AWS_CREDENTIALS_BLOCK")  # back to the environment's keys
            get_settings.cache_clear()
            with pytest.raises(ConfigError, match="access denied"):
                open_store(get_settings().store_url).put_bytes("x", b"x")
    finally:
        server.stop()
