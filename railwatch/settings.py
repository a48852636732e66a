"""The one settings object of railwatch (environment prefix ``RAILWATCH_``), loaded once.

Defaults are the embedded ones: a local folder store, SQLite, a Dask LocalCluster and the
built-in simulator as catalog, all under ``RAILWATCH_HOME`` (default ``./.railwatch``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where railwatch keeps things and what it talks to."""

    model_config = SettingsConfigDict(env_prefix="RAILWATCH_", env_nested_delimiter="__")

    home: Path = Field(Path(".railwatch"), description="Working folder for embedded defaults.")
    aoi_dir: Path = Field(Path("aois"), description="Folder of AOI files (the AOI registry).")
    store: str = Field("", description="Object store: a folder path or s3://bucket/prefix.")
    database_url: str = Field("", description="SQLAlchemy URL of the counts store.")
    catalogs: list[str] = Field(
        default_factory=lambda: ["simulator"],
        description="Catalog sources: 'simulator' or a path/URL of a static STAC collection.",
    )
    dask_address: str | None = Field(None, description="Address of an existing Dask scheduler.")
    dask_workers: int = Field(2, ge=1, description="Workers of the LocalCluster when no address.")
    batch_size: int = Field(8, ge=1, description="AOI-scenes per Dask task.")
    clip_buffer_m: float = Field(60.0, ge=0, description="Margin around the AOI in every clip.")
    max_aoi_km2: float = Field(100.0, gt=0, description="Largest AOI accepted as a rail yard.")
    webhook_urls: list[str] = Field(
        default_factory=list, description="Receivers of surge alerts (JSON list of http(s) URLs).")
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the X-Railwatch-Signature header (never logged).")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Per-request webhook timeout.")
    webhook_attempts: int = Field(4, ge=1, description="Attempts per delivery within one run.")
    webhook_backoff_s: float = Field(1.0, ge=0, description="First retry delay (doubles each time).")

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
    """Settings from the environment, read once per process."""
    return Settings()
