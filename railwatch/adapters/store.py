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
from types import EllipsisType
from typing import Any, Protocol
from urllib.parse import urlparse

from railwatch.adapters.s3 import S3Config, s3_error
from railwatch.errors import ConfigError, RailwatchError, StorageError


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object."""

    key: str
    size: int
    sha256: str | None


class ObjectStore(Protocol):
    """Where clips, masks, profiles and reports live."""

    url: str

    def put_bytes(self, key: str, data: bytes, stored: ObjectInfo | EllipsisType | None = ...) -> ObjectInfo:
        """Write atomically; skip the write when an identical object is already there.
        `stored`: what `info(key)` said, when the caller asked ahead (saves a round trip)."""
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

    def check(self) -> None:
        """Raise a one-line ConfigError when the store cannot be used at all (missing bucket,
        refused credentials, a folder that cannot be written), before any work starts."""
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

    def put_bytes(self, key: str, data: bytes, stored: ObjectInfo | EllipsisType | None = ...) -> ObjectInfo:
        digest = sha256_hex(data)
        existing = self.info(key) if stored is ... else stored
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

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"store folder {self.root} cannot be created ({exc.strerror}); "
                              "fix RAILWATCH_STORE") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ConfigError(f"store folder {self.root} is not writable; fix RAILWATCH_STORE")


class S3Store:
    """An S3 bucket (any endpoint) through boto3.

    A PUT is atomic by the protocol's nature: an interrupted upload never becomes visible under its
    key. Failures become one-line errors naming what to fix (`railwatch.adapters.s3.s3_error`).
    """

    def __init__(self, bucket: str, prefix: str = "", s3: S3Config | None = None,
                 client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.s3 = s3 or S3Config.from_settings()
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or self.s3.client()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, action: str, key: str, method: str, **kwargs: Any) -> Any:
        """One boto3 call with its failures turned into railwatch errors."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(exc, action, self.uri(key), self.s3) from exc

    def put_bytes(self, key: str, data: bytes, stored: ObjectInfo | EllipsisType | None = ...) -> ObjectInfo:
        digest = sha256_hex(data)
        existing = self.info(key) if stored is ... else stored
        if existing is not None and existing.sha256 == digest:
            return existing
        self._call("write", key, "put_object", Key=self._key(key), Body=data,
                   Metadata={"sha256": digest})
        return ObjectInfo(key, len(data), digest)

    def get_bytes(self, key: str) -> bytes:
        body = self._call("read", key, "get_object", Key=self._key(key))["Body"]
        return bytes(body.read())

    def info(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            head = self._call("stat", key, "head_object", Key=self._key(key))
        except RailwatchError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                    "404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(key, int(head["ContentLength"]), head.get("Metadata", {}).get("sha256"))

    def list(self, prefix: str = "") -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for obj in page.get("Contents", []):
                    yield obj["Key"][strip:]
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(exc, "list", self.uri(prefix), self.s3) from exc

    def gdal_path(self, key: str) -> str:
        return f"/vsis3/{self.bucket}/{self._key(key)}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def check(self) -> None:
        self._call("open", "", "head_bucket")  # a missing bucket or refused keys: ConfigError


def open_store(url: str, s3: S3Config | None = None) -> ObjectStore:
    """A store from a URL: ``s3://bucket/prefix`` (endpoint and credentials from `s3`, by default
    from the settings) or a folder path."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError(f"store URL {url!r} (RAILWATCH_STORE) names no bucket; use s3://bucket/prefix")
        return S3Store(parsed.netloc, parsed.path, s3=s3)
    if parsed.scheme in ("", "file"):
        return LocalStore(parsed.path if parsed.scheme == "file" else url)
    raise ConfigError(f"store URL {url!r} (RAILWATCH_STORE): unsupported scheme {parsed.scheme!r}; "
                      "use a folder path or s3://bucket/prefix")
