"""S3 access in one place: the endpoint, region and credentials that boto3 and GDAL both use.

boto3 and GDAL's ``/vsis3/`` read credentials and endpoints from different variables in different
forms (``http://host:port`` vs ``host:port`` + ``AWS_HTTPS``); `S3Config` is the single source
both are derived from, so a store and the scenes it clips can never talk to different endpoints.
Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, instance roles …) or, when ``RAILWATCH_AWS_CREDENTIALS_BLOCK`` names one, from a
prefect-aws ``AwsCredentials`` block (keys kept on the Prefect server, not in every worker's
environment); either way they are handed to GDAL as a rasterio `AWSSession`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from railwatch.errors import ConfigError, RailwatchError, StorageError
from railwatch.settings import Settings, get_settings

# Error codes that no retry can fix: the bucket, the key or the credentials are wrong.
_NOT_FOUND = {"NoSuchBucket": "bucket does not exist", "404": "bucket does not exist"}
_DENIED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403",
           "InvalidToken", "ExpiredToken"}


@dataclass(frozen=True)
class S3Config:
    """Where S3 is: ``endpoint_url`` None means AWS itself; otherwise e.g. ``http://127.0.0.1:9000``."""

    endpoint_url: str | None = None
    region: str | None = None
    credentials_block: str | None = None  # a prefect-aws AwsCredentials block's name

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> S3Config:
        settings = settings or get_settings()
        return cls(endpoint_url=settings.s3_endpoint_url or None, region=settings.s3_region or None,
                   credentials_block=settings.aws_credentials_block or None)

    def __post_init__(self) -> None:
        if self.endpoint_url:
            parsed = urlparse(self.endpoint_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError(f"S3 endpoint {self.endpoint_url!r} is not a URL; "
                                  "set RAILWATCH_S3_ENDPOINT_URL like http://host:port")

    def session(self) -> Any:
        """A boto3 session: the credentials block's keys if one is named, else the standard
        credential chain; our region unless the block sets one."""
        import boto3

        if self.credentials_block:
            block = credentials_block(self.credentials_block)
            if block.region_name is None and self.region:
                block = block.model_copy(update={"region_name": self.region})
            return block.get_boto3_session()
        return boto3.Session(region_name=self.region)

    def client(self) -> Any:
        """A boto3 S3 client with bounded retries, so a dead endpoint fails in seconds, not minutes."""
        from botocore.config import Config

        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                        read_timeout=60, s3={"addressing_style": "path"} if self.endpoint_url else {})
        return self.session().client("s3", endpoint_url=self.endpoint_url, config=config)

    def gdal_options(self) -> dict[str, Any]:
        """`rasterio.Env` options for ``/vsis3/`` reads (same credentials and endpoint as boto3).

        Built once per configuration and credential environment, not per read: a boto3 session
        costs ≈ 30 ms, and on an instance role each new one asks the metadata service again.
        Changed AWS variables give a new session; temporary credentials refresh themselves."""
        return dict(_gdal_options(self, tuple(os.environ.get(n) for n in _CREDENTIAL_VARIABLES)))

    @property
    def where(self) -> str:
        return self.endpoint_url or "AWS"


# the environment a boto3 session takes its credentials from
_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                         "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION")


@lru_cache(maxsize=8)
def _gdal_options(config: S3Config, environment: tuple[str | None, ...]) -> dict[str, Any]:
    """`S3Config.gdal_options` for one credential environment (the cache key)."""
    from rasterio.session import AWSSession

    session = config.session()
    region = session.region_name or "us-east-1"
    if not config.endpoint_url:
        return {"session": AWSSession(session=session, region_name=region)}
    parsed = urlparse(config.endpoint_url)
    return {
        "session": AWSSession(session=session, region_name=region, endpoint_url=parsed.netloc),
        "AWS_HTTPS": "YES" if parsed.scheme == "https" else "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }


@lru_cache(maxsize=8)
def credentials_block(name: str) -> Any:
    """The prefect-aws `AwsCredentials` block `name`, loaded once per process from the Prefect API.

    prefect-aws is optional (``pip install 'railwatch[aws]'``), hence the import by name.
    """
    try:
        prefect_aws = importlib.import_module("prefect_aws")
    except ImportError as exc:
        raise ConfigError(f"RAILWATCH_AWS_CREDENTIALS_BLOCK={name} needs prefect-aws; install it "
                          "with pip install 'railwatch[aws]' or unset the variable") from exc
    try:
        return prefect_aws.AwsCredentials.load(name)
    except ValueError as exc:  # Prefect: "Unable to find block document named ..."
        raise ConfigError(f"RAILWATCH_AWS_CREDENTIALS_BLOCK: no AwsCredentials block named {name!r} "
                          "on the Prefect server; create it (README: Clips on S3)") from exc


def is_s3(href: str) -> bool:
    return href.startswith(("s3://", "/vsis3/"))


def gdal_path(href: str) -> str:
    """The GDAL path of a scene href: ``s3://b/k`` → ``/vsis3/b/k``; others unchanged."""
    return "/vsis3/" + href[len("s3://"):] if href.startswith("s3://") else href


def s3_error(exc: Exception, action: str, uri: str, config: S3Config) -> RailwatchError:
    """One line naming what failed and what to fix, from a boto3/botocore exception."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
    )

    if isinstance(exc, NoCredentialsError):
        return ConfigError(f"cannot {action} {uri}: no AWS credentials found; set AWS_ACCESS_KEY_ID "
                           "and AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
    if isinstance(exc, EndpointConnectionError):
        return StorageError(f"cannot {action} {uri}: S3 endpoint {config.where} is unreachable "
                            "(is it up? is RAILWATCH_S3_ENDPOINT_URL right?)")
    if isinstance(exc, HTTPClientError):  # the connection broke mid-request
        return StorageError(f"cannot {action} {uri}: the connection to {config.where} broke "
                            "mid-request; nothing was stored under that key, rerun to complete")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _NOT_FOUND:
            bucket = uri.removeprefix("s3://").split("/", 1)[0]
            return ConfigError(f"cannot {action} {uri}: bucket {bucket!r} does not exist at "
                               f"{config.where}; create it or fix RAILWATCH_STORE")
        if code in _DENIED:
            return ConfigError(f"cannot {action} {uri}: access denied at {config.where} ({code}); "
                               "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
        return StorageError(f"cannot {action} {uri}: {code} {error.get('Message', '')}".rstrip())
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StorageError(f"cannot {action} {uri}: {first_line}")
