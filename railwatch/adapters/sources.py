"""Where a scene's bytes come from: a GDAL path that reads only the needed ranges, or — for a
server that cannot serve ranges (some download URLs) — a temporary copy streamed to disk.

The copy is streamed in 1 MiB chunks (never the whole scene in RAM), capped in size (bounded
disk) and deleted as soon as the clip has been read.
"""

from __future__ import annotations

import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from railwatch.adapters.s3 import gdal_path, is_s3
from railwatch.errors import SceneError, StorageError

CHUNK = 1024 * 1024
TIMEOUT_S = 60


def is_http(href: str) -> bool:
    return href.startswith(("http://", "https://"))


def is_remote(href: str) -> bool:
    """A scene href read over the network (HTTP, S3 or a GDAL virtual file system)."""
    return is_http(href) or is_s3(href) or href.startswith("/vsi")


@contextmanager
def readable(href: str, max_bytes: int) -> Iterator[str]:
    """A path GDAL can open for `href`; a temporary copy (deleted on exit) if it has no ranges."""
    if not is_http(href):
        yield gdal_path(href)
        return
    response = _probe(href)
    if response is None:  # 206: the server serves ranges, GDAL reads only what it needs
        yield f"/vsicurl/{href}"
        return
    with response, tempfile.TemporaryDirectory(prefix="railwatch-stream-") as folder:
        path = Path(folder) / "scene.tif"
        _stream(response, path, href, max_bytes)
        yield str(path)


@retry(retry=retry_if_exception_type(StorageError), reraise=True, stop=stop_after_attempt(5),
       wait=wait_exponential(multiplier=0.25, max=4))  # a 503 or a dropped connection may pass
def _probe(href: str) -> Any | None:
    """Ask for one byte: None when the server answers 206; the open 200 response when it cannot
    serve ranges (its body is the whole file, streamed by the caller)."""
    request = urllib.request.Request(href, headers={"Range": "bytes=0-0"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the open response: not picklable, so not sent back from a Dask worker
        if 400 <= exc.code < 500 and exc.code not in (408, 429):  # the same URL will not work again
            raise SceneError(f"{_short(href)}: HTTP {exc.code} ({exc.reason}); the URL is wrong, "
                             "expired or not allowed") from None
        raise StorageError(f"{_short(href)}: HTTP {exc.code} ({exc.reason})") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StorageError(f"{_short(href)}: cannot connect ({exc})") from exc
    if response.status == 206:
        response.close()
        return None
    return response


def _stream(response: Any, path: Path, href: str, max_bytes: int) -> None:
    """Copy the response body to `path` chunk by chunk, refusing more than `max_bytes`."""
    length = response.headers.get("Content-Length")
    if length is not None and int(length) > max_bytes:
        raise SceneError(f"{_short(href)}: {int(length) / 1e6:.0f} MB without range support exceeds "
                         f"RAILWATCH_STREAM_MAX_MB ({max_bytes / 1e6:.0f} MB)")
    written = 0
    try:
        with path.open("wb") as out:
            while chunk := response.read(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise SceneError(f"{_short(href)}: more than RAILWATCH_STREAM_MAX_MB "
                                     f"({max_bytes / 1e6:.0f} MB) without range support")
                out.write(chunk)
    except OSError as exc:
        raise StorageError(f"{_short(href)}: streaming to a temporary file failed ({exc})") from exc
    if length is not None and written != int(length):
        raise StorageError(f"{_short(href)}: the download ended after {written} of {length} bytes")


def _short(href: str) -> str:
    """The URL without its query (signed URLs carry credentials there)."""
    return href.split("?", 1)[0]

