"""Fixtures shared across test modules: a real S3 server (moto's server mode) on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from servers import CountingProxy, MotoServer

from railwatch.adapters.s3 import S3Config

FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def fake_aws_env() -> Iterator[None]:
    """Credentials and region for the test servers (any credentials do, unless auth is on)."""
    saved = {k: os.environ.get(k) for k in FAKE_AWS}
    os.environ.update(FAKE_AWS)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_server(fake_aws_env: None) -> Iterator[MotoServer]:
    """One moto S3 server subprocess for the whole session (tests use their own buckets)."""
    server = MotoServer().start()
    yield server
    server.stop()


@dataclass
class S3:
    """A test's view of the S3 server: its config, a boto3 client and fresh buckets."""

    config: S3Config
    client: Any
    new_bucket: Callable[[str], str]


def _s3_for(endpoint: str) -> S3:
    config = S3Config(endpoint_url=endpoint)
    client = config.client()

    def new_bucket(name: str) -> str:
        bucket = f"{name}-{uuid.uuid4().hex[:10]}"  # unique: no state (or GDAL cache) shared
        client.create_bucket(Bucket=bucket)
        return bucket

    return S3(config, client, new_bucket)


@pytest.fixture
def s3(moto_server: MotoServer) -> S3:
    """Direct access to the session's S3 server."""
    return _s3_for(moto_server.endpoint)


@pytest.fixture
def s3_proxy(moto_server: MotoServer) -> Iterator[CountingProxy]:
    """A counting, failable proxy in front of the session's S3 server."""
    proxy = CountingProxy(moto_server.endpoint).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def s3_via_proxy(s3_proxy: CountingProxy) -> S3:
    """S3 access whose every request goes through `s3_proxy`."""
    return _s3_for(s3_proxy.endpoint)
