"""The object store: a small protocol with a local-folder and an S3 implementation.

Writes are atomic (nothing partial is ever visible under a final key) and carry a SHA-256 so
that a rerun can skip an identical object instead of rewriting it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from railwatch.errors import ConfigError, StorageError


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object."""

    key: str
    size: int
    sha256: str | None


class ObjectStore(Protocol):
    """Where clips, masks, profiles and reports live."""

    url: str

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Write atomically; skip the write when an identical object is already there."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def info(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str = "") -> Iterator[str]: ...

    def gdal_path(self, key: str) -> str:
        """A path rasterio/GDAL can open directly (local path or /vsis3/...)."""
        ...

    def uri(self, key: str) -> str:
        """A URI a person or another tool can use to find the object."""
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """A folder on disk (the embedded default)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageError(f"key {key!r} escapes the store root {self.root}")
        return path

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        digest = sha256_hex(data)
        existing = self.info(key)
        if existing is not None and existing.sha256 == digest:
            return existing
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            Path(tmp).replace(path)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror}") from exc
        return ObjectInfo(key, len(data), digest)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror}") from exc

    def info(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return ObjectInfo(key, path.stat().st_size, sha256_hex(path.read_bytes()))

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            yield prefix
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.endswith(".part"):
                yield path.relative_to(self.root).as_posix()

    def gdal_path(self, key: str) -> str:
        return str(self._path(key))

    def uri(self, key: str) -> str:
        return str(self._path(key))


class S3Store:
    """An S3 bucket (any endpoint) through boto3; a PUT is atomic by the protocol's nature."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 client: Any | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = client or boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        from botocore.exceptions import BotoCoreError, ClientError

        digest = sha256_hex(data)
        existing = self.info(key)
        if existing is not None and existing.sha256 == digest:
            return existing
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, Metadata={"sha256": digest}
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot write s3://{self.bucket}/{self._key(key)}: {exc}") from exc
        return ObjectInfo(key, len(data), digest)

    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            return bytes(body.read())
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot read s3://{self.bucket}/{self._key(key)}: {exc}") from exc

    def info(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"cannot stat s3://{self.bucket}/{self._key(key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot stat s3://{self.bucket}/{self._key(key)}: {exc}") from exc
        return ObjectInfo(key, int(head["ContentLength"]), head.get("Metadata", {}).get("sha256"))

    def list(self, prefix: str = "") -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:]

    def gdal_path(self, key: str) -> str:
        return f"/vsis3/{self.bucket}/{self._key(key)}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def open_store(url: str, endpoint_url: str | None = None) -> ObjectStore:
    """A store from a URL: ``s3://bucket/prefix`` or a folder path."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError(f"store URL {url!r} names no bucket; use s3://bucket/prefix")
        return S3Store(parsed.netloc, parsed.path, endpoint_url=endpoint_url)
    if parsed.scheme in ("", "file"):
        return LocalStore(parsed.path if parsed.scheme == "file" else url)
    raise ConfigError(f"store URL {url!r}: unsupported scheme {parsed.scheme!r}; use a folder or s3://")
