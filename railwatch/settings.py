"""The one settings object of railwatch (environment prefix ``RAILWATCH_``), loaded once.

Defaults are the embedded ones: a local folder store, SQLite, a Dask LocalCluster and the
built-in simulator as catalog, all under ``RAILWATCH_HOME`` (default ``./.railwatch``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from railwatch.adapters.catalogs.base import AssetMap
from railwatch.adapters.raster import CogCompression
from railwatch.errors import ConfigError


class Settings(BaseSettings):
    """Where railwatch keeps things and what it talks to."""

    model_config = SettingsConfigDict(env_prefix="RAILWATCH_", env_nested_delimiter="__",
                                      populate_by_name=True)

    home: Path = Field(Path(".railwatch"), description="Working folder for embedded defaults.")
    aoi_dir: Path = Field(Path("aois"), description="Folder of AOI files (the AOI registry).")
    store: str = Field("", description="Object store: a folder path or s3://bucket/prefix.")
    database_url: str = Field("", description="SQLAlchemy URL of the counts store.")
    catalogs: list[str] = Field(
        default_factory=lambda: ["simulator"], min_length=1,
        description="Catalog sources: 'simulator', a static STAC collection.json path, "
        "'stac+https://host/path?collections=...' or 'planet' (README: Catalogs).",
    )
    asset_maps: dict[str, AssetMap] = Field(
        default_factory=dict,
        description="Extra asset maps by name or collection id: which asset keys are the image "
        "bands and the mask (built in: default, sentinel-2-l2a, pc-sentinel-2-l2a).",
    )
    poll_overlap_hours: float = Field(24.0, ge=0, description="A watch searches scenes published "
                                      "this long before its last mark again (late indexing).")
    max_attempts: int = Field(3, ge=1, description="Failed scenes are retried until this many attempts.")
    task_retry_delays_s: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [2.0, 10.0, 30.0],
        description="A task that fails on infrastructure (store, catalog, network) is retried after "
        "each of these delays within the run (JSON list; [] = no retries).")
    s3_endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("RAILWATCH_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        description="S3-compatible endpoint (http://host:port) for the store and s3:// scenes; unset = AWS.",
    )
    s3_region: str | None = Field(
        None, validation_alias=AliasChoices("RAILWATCH_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        description="S3 region; unset = boto3's default chain, else us-east-1.",
    )
    aws_credentials_block: str | None = Field(
        None, description="Name of a prefect-aws AwsCredentials block holding the S3 keys "
        "(optional extra 'aws'); unset = boto3's standard credential chain.",
    )
    planet_api_key_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding the Planet API key (kept on the "
        "Prefect server, not in every worker's environment); unset = the PL_API_KEY variable.",
    )
    stream_max_mb: float = Field(
        20_000.0, gt=0,
        description="Largest scene streamed to a temporary file when its server cannot serve ranges.",
    )
    dask_address: str | None = Field(None, description="Address of an existing Dask scheduler "
                                     "(tcp://host:8786; dask-kubernetes, dask-gateway, Coiled).")
    dask_cluster_class: str | None = Field(
        None, description="Dask cluster class started per flow run when no address, e.g. "
        "dask_kubernetes.operator.KubeCluster (default: a LocalCluster of `dask_workers`).")
    dask_cluster_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of that cluster class (JSON).")
    dask_workers: int = Field(2, ge=1, description="Workers of the LocalCluster when no address.")
    batch_size: int = Field(32, ge=1, description="AOI-scenes per Dask task (at least two tasks "
                            "per worker are made when there is enough work).")
    backfill_chunk_days: int = Field(28, ge=1, description="A backfill processes its range in "
                                     "chunks of this many days (the unit of resumption and progress).")
    clip_buffer_m: float = Field(60.0, ge=0, description="Margin around the AOI in every clip.")
    clip_compression: CogCompression = Field(
        "zstd", description="Codec of the clip and reference COGs: zstd (fast; GDAL >= 2.3 reads "
        "it) or deflate (for older readers; 2x slower to write and read).")
    max_aoi_km2: float = Field(100.0, gt=0, description="Largest AOI accepted as a rail yard.")
    webhook_urls: list[str] = Field(
        default_factory=list, description="Receivers of surge alerts (JSON list of http(s) URLs).")
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the X-Railwatch-Signature header (never logged).")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Per-request webhook timeout.")
    webhook_attempts: int = Field(4, ge=1, description="Attempts per delivery within one run.")
    webhook_backoff_s: float = Field(1.0, ge=0, description="First retry delay (doubles each time).")
    webhook_max_age_days: float = Field(
        7.0, ge=0, description="Transitions of scenes acquired longer ago than this are recorded as "
        "skipped, not sent (a backfill does not page anyone about last year); 0 = send all.")

    @property
    def store_url(self) -> str:
        return self.store or str(self.home / "store")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'counts.db'}"

    @property
    def simulator_dir(self) -> Path:
        return self.home / "simulator"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process; a bad value is a one-line
    ConfigError naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "?"
        raise ConfigError(f"{env_name(field)}={first.get('input')!r}: {first['msg']}") from None
    except SettingsError as exc:  # a JSON setting that does not parse
        found = re.search(r'field "([^"]+)"', str(exc))
        name = env_name(found.group(1)) if found else "a RAILWATCH_ setting"
        raise ConfigError(f"{name}: not valid JSON ({exc.__cause__ or exc}); give a JSON list "
                          "such as '[\"simulator\"]' or an object such as '{\"key\": 1}'") from None


def env_name(field: str) -> str:
    """The environment variable of a settings field (its first part, when nested)."""
    return "RAILWATCH_" + field.split(".")[0].upper()
