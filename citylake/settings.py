"""One typed settings object for the whole platform.

Sources, strongest first: keyword arguments, environment variables prefixed ``CITYLAKE_``
(nested with ``__``, e.g. ``CITYLAKE_S3__ENDPOINT``), then ``citylake.toml`` in the working
directory (or the file named by ``CITYLAKE_CONFIG``). The defaults are the embedded mode:
Spark ``local[*]`` and Delta tables on local disk under ``./var/lakehouse``.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
Layer = Literal["ods", "dwd", "dws", "ads"]


class S3Settings(BaseModel):
    """Object storage (MinIO in the stack, any S3 in production) for ``s3a://`` warehouses."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = "http://127.0.0.1:9000"
    access_key: str = "citylake"
    secret_key: SecretStr = SecretStr("citylake-secret")
    path_style: bool = True
    region: str = "us-east-1"
    buckets: list[str] = Field(
        default_factory=lambda: ["lake"],
        description="Created by `citylake up` on the project's MinIO, beside the buckets the "
        "warehouse and landing zone name.",
    )


class SparkSettings(BaseModel):
    """Where Spark runs. Exactly one of ``master`` or ``connect_url`` decides the mode."""

    model_config = ConfigDict(extra="forbid")

    master: str = "local[*]"
    connect_url: str | None = Field(
        default=None, description="Spark Connect URL, e.g. sc://127.0.0.1:15002"
    )
    driver_memory: str = "4g"
    shuffle_partitions: int | None = Field(
        default=None,
        ge=1,
        description="Spark's shuffle partitions. Unset: one per core in local mode (a build's "
        "shuffles are small and each partition is a task to schedule: 2 instead of 4 made a "
        "city-day about 5 % faster on 2 cores), Spark's own default on a cluster.",
    )
    app_name: str = "citylake"
    extra_conf: dict[str, str] = Field(default_factory=dict)
    connect_port: int = Field(
        default=15002,
        description="Port of the Spark Connect server (with Delta) that `citylake up` runs on "
        "127.0.0.1 as the service spark-connect; Airflow's tasks run on it, or on connect_url "
        "when that names another server.",
    )
    connect_start_timeout_seconds: float = 300.0
    connect_session_timeout: str = Field(
        default="15min",
        description="A Connect session idle this long is released with its cached frames: an "
        "Airflow task's process ends without closing its session.",
    )


class AlertSettings(BaseModel):
    """Where a blocked quality gate is announced. Every channel that is configured is used."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(default=None, description="POSTed a JSON alert")
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "citylake@localhost"
    smtp_recipients: list[str] = Field(default_factory=list)
    timeout_seconds: float = 5.0


class SourceDatabaseSettings(BaseModel):
    """The payment system's database that `pay_*` feeds are pulled from (PostgreSQL).

    In tests and the demo the project starts Debian's PostgreSQL itself on 127.0.0.1 with its
    data under ``var/``; in production point this at the payment system's read replica.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 54329
    dbname: str = "payments"
    user: str = "citylake"
    password: SecretStr = SecretStr("citylake")
    batch_rows: int = Field(
        default=500_000, ge=1, description="Most rows pulled into one delivery."
    )
    watermark_lag_seconds: float = Field(
        default=5.0,
        ge=0,
        description="A pull takes only rows changed at least this long ago (source clock), so "
        "a source transaction still open when the pull starts is not passed by the watermark. "
        "Set it above the longest write transaction of the source.",
    )

    def conninfo(self) -> str:
        return (
            f"host={self.host} port={self.port} dbname={self.dbname} user={self.user} "
            f"password={self.password.get_secret_value()}"
        )


class ExchangeSettings(BaseModel):
    """The government data-sharing exchange that `gov_*` feeds are pulled from (REST, paged)."""

    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:18080"
    token: SecretStr = SecretStr("citylake-exchange-token")
    page_size: int = Field(default=5_000, ge=1, le=50_000)
    timeout_seconds: float = 30.0


class TrinoSettings(BaseModel):
    """The SQL engine analysts and the cockpit query: Trino's Delta Lake connector over the
    warehouse. The project runs it on 127.0.0.1; in production point this at the coordinator."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 18090
    catalog: str = Field(default="lake", description="Catalog of the warehouse's tables.")
    user: str = "citylake"
    heap: str = Field(default="2G", description="JVM heap of the one-node server (-Xmx).")
    java_home: Path | None = Field(
        default=None,
        description="A JDK new enough for Trino (24+); default: the newest under /usr/lib/jvm.",
    )
    start_timeout_seconds: float = 240.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class CatalogSettings(BaseModel):
    """The OpenMetadata server `citylake catalog sync` publishes tables, lineage, owners, tags
    and the indicator glossary to (``catalog/``, docs/catalog.md). The sync runs in its own
    virtual environment (``venv``: openmetadata-ingestion's pins collide with the main one's)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default="http://127.0.0.1:8585/api",
        description="The server's API root (OpenMetadata's hostPort, ending in /api).",
    )
    token: SecretStr | None = Field(
        default=None,
        description="JWT of an OpenMetadata bot or user allowed to create entities "
        "(Settings → Bots → ingestion-bot in the UI).",
    )
    service: str = Field(
        default="citylake", description="Database service the lakehouse is published under."
    )
    database: str = Field(default="lake", description="Its database; one schema per layer.")
    venv: Path = Field(
        default=PROJECT_ROOT / ".venv-catalog",
        description="Virtual environment with openmetadata-ingestion (made by `make setup`).",
    )


class AirflowSettings(BaseModel):
    """The orchestrator `citylake up` runs: Airflow's api-server, scheduler and dag-processor on
    127.0.0.1 with LocalExecutor, its metadata in a database of the project's PostgreSQL."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 18070
    parallelism: int = Field(
        default=2, ge=1, description="Task processes at once (LocalExecutor): one per core."
    )
    user: str = Field(default="citylake", description="The API's admin user (simple auth).")
    db_name: str = "airflow"
    db_user: str = "airflow"
    start_timeout_seconds: float = 180.0
    retries: int = Field(
        default=2, ge=0, description="Retries of a failed task (a data problem never retries)."
    )
    retry_delay_seconds: float = Field(default=60.0, ge=0, description="Wait before retry 1.")
    retry_backoff: float = Field(
        default=2.0, ge=1.0, description="Each further retry waits this many times longer."
    )
    max_retry_delay_seconds: float = Field(
        default=600.0, ge=0, description="Longest wait between two tries."
    )
    compact_schedule: str = Field(
        default="0 4 * * 0",
        description="Cron (Beijing time) of the DAG citylake_maintenance, which compacts the "
        "small files of the DWD, DWS and ADS partitions (pipelines/maintenance.py): Sunday 04:00, "
        "after the night's feeds.",
    )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class SupersetSettings(BaseModel):
    """The cockpit (驾驶舱): Apache Superset from its own virtual environment (``.venv-superset``;
    its pins collide with Airflow's), served by gunicorn on 127.0.0.1, its metadata in a
    database of the project's PostgreSQL; `citylake cockpit deploy` provisions the dashboards."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 18088
    workers: int = Field(
        default=1, ge=1, le=4, description="gunicorn worker processes (~400 MB each)."
    )
    threads: int = Field(default=4, ge=1, description="Threads per worker (charts load at once).")
    user: str = Field(default="citylake", description="The admin user deploy and tests log in as.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs sessions and encrypts stored connection secrets. Default: generated "
        "once into var/superset/secrets.json; set your own in production.",
    )
    locale: Literal["zh", "en"] = Field(default="zh", description="Default UI language.")
    cache_seconds: int = Field(
        default=600,
        ge=0,
        description="How long chart results are served from Superset's cache (var/superset/"
        "cache) instead of asking Trino again: a build shows after at most this long, or at "
        "once with a dashboard's force refresh. 0: no cache.",
    )
    db_name: str = "superset"
    db_user: str = "superset"
    start_timeout_seconds: float = 240.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class WorkOrderSettings(BaseModel):
    """Where quality work orders (质量工单) live: a database of their own on a PostgreSQL server,
    by default the project's own (the source database's host and port). With ``enabled`` every
    failed gate check opens or updates an order (``quality/orders.py``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Open orders from a build's gate failures.")
    host: str | None = Field(default=None, description="Default: source_db.host")
    port: int | None = Field(default=None, description="Default: source_db.port")
    dbname: str = "quality"
    user: str = "citylake_quality"
    password: SecretStr = SecretStr("citylake-quality")
    sample_rows: int = Field(default=10, ge=0, description="Sample values kept per order.")


class AccessSettings(BaseModel):
    """Department access grants to data products (数据产品授权, ``catalog/grants.py``): a database
    of their own on a PostgreSQL server, by default the project's own; and how departments
    appear to Trino, whose file-based access control is generated from the active grants."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(default=None, description="Default: source_db.host")
    port: int | None = Field(default=None, description="Default: source_db.port")
    dbname: str = "access"
    user: str = "citylake_access"
    password: SecretStr = SecretStr("citylake-access")
    default_expiry_days: int = Field(
        default=365, ge=1, description="A grant approved without an expiry ends after this."
    )
    trino_users: dict[str, str] = Field(
        default_factory=lambda: {
            "市商务局": "dept_commerce",
            "市大数据中心": "dept_bigdata",
            "市税务局": "dept_tax",
            "市统计局": "dept_stats",
            "市市场监管局": "dept_market",
            "市人力资源和社会保障局": "dept_hrss",
        },
        description="Trino user of each department (ASCII: it travels in the X-Trino-User "
        "header); a department not listed is dept_<first 10 hex of sha256(name)>.",
    )
    trino_refresh_seconds: int = Field(
        default=1, ge=1, description="How often Trino rereads the generated rules file."
    )
    rules_schedule: str = Field(
        default="*/5 * * * *",
        description="Cron of the Airflow DAG citylake_access_rules, which regenerates Trino's "
        "rules from the grants in force: an expired grant closes in SQL within this period.",
    )


class ApiSettings(BaseModel):
    """The data-product API (``serving/``): ADS tables over HTTP for departments' apps."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 18100
    workers: int = Field(default=2, ge=1, description="uvicorn worker processes: one per core.")
    max_limit: int = Field(default=1000, ge=1, description="Largest page a call may ask for.")
    default_limit: int = Field(default=100, ge=1)
    app_rate: float = Field(default=200.0, gt=0, description="Calls per second per app.")
    app_burst: int = Field(default=400, ge=1, description="Burst an app may spend at once.")
    product_rate: float = Field(
        default=5000.0, gt=0, description="Calls per second per data product (all apps)."
    )
    product_burst: int = Field(default=10000, ge=1)
    allow_cidrs: list[str] = Field(
        default_factory=list, description="If set, only clients in these networks are served."
    )
    deny_cidrs: list[str] = Field(
        default_factory=list, description="Clients in these networks are refused (403)."
    )
    grant_cache_seconds: float = Field(
        default=1.0, gt=0, le=1.0, description="Grant look-ups are cached this long at most."
    )
    version_check_seconds: float = Field(
        default=1.0, gt=0, description="A table's Delta version is checked this often at most."
    )
    audit_flush_seconds: float = Field(
        default=0.1,
        gt=0,
        description="The audit flusher writes a batch this often (small batches: a COPY "
        "holds the worker for its rows; 0.5 s batches put ~50 ms stalls in the p99).",
    )
    page_cache_entries: int = Field(
        default=4096, ge=0, description="Serialized pages kept per worker (0: none)."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CITYLAKE_", env_nested_delimiter="__", extra="forbid"
    )

    warehouse: str = Field(
        default="var/lakehouse",
        description="Warehouse root: a local path or s3a://bucket/prefix. Tables live at "
        "<warehouse>/<layer>/<table>.",
    )
    landing: str = Field(default="var/landing", description="Landing zone for delivered files.")
    var_dir: Path = Field(default=Path("var"), description="All runtime state of the project.")
    cache_dir: Path = Field(
        default=PROJECT_ROOT / ".cache", description="Downloaded jars and other set-up caches."
    )
    maven_repository: str = "https://repo1.maven.org/maven2"
    contracts_dir: Path = Field(
        default=PROJECT_ROOT / "warehouse_layers", description="Table contracts (YAML)."
    )
    models_dir: Path = Field(
        default=PROJECT_ROOT / "models", description="SQL models of the DWS and ADS layers."
    )
    models_start: dt.date = Field(
        default=dt.date(2024, 1, 1),
        description="First day the DWS/ADS models hold: a build fills every day from it that "
        "was never built (an empty day costs one cheap write).",
    )
    timezone: str = "Asia/Shanghai"
    restatement_days: int = Field(
        default=7,
        ge=0,
        description="A daily run also rebuilds this many earlier days, so refunds and "
        "reversals delivered up to that late restate their original day.",
    )
    pii_key: SecretStr = Field(
        default=SecretStr("citylake-embedded-pii-key"),
        description="HMAC-SHA256 key for the join hashes of personal data (身份证, names) in DWD. "
        "Set a secret of your own in production: whoever knows it can test guesses.",
    )
    units_at_once: int = Field(
        default=2,
        ge=1,
        description="Units of work a build runs side by side on its Spark session: the "
        "domains' DWD units (pipelines/units.py), then the SQLMesh models whose inputs are "
        "built; 1 runs them one after another.",
    )
    spark: SparkSettings = Field(default_factory=SparkSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    source_db: SourceDatabaseSettings = Field(default_factory=SourceDatabaseSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    trino: TrinoSettings = Field(default_factory=TrinoSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    work_orders: WorkOrderSettings = Field(default_factory=WorkOrderSettings)
    superset: SupersetSettings = Field(default_factory=SupersetSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @model_validator(mode="after")
    def _absolute_local_paths(self) -> Settings:
        # Relative paths are relative to the working directory at load time, fixed once so
        # that Spark executors, Airflow tasks and tests all agree on one location.
        if not self.is_remote_warehouse:
            self.warehouse = str(Path(self.warehouse).expanduser().resolve())
        self.var_dir = self.var_dir.expanduser().resolve()
        if "://" not in self.landing:  # an object-store landing zone stays a URL
            self.landing = str(Path(self.landing).expanduser().resolve())
        return self

    @property
    def is_remote_warehouse(self) -> bool:
        return self.warehouse.startswith(("s3a://", "s3://"))

    def table_path(self, layer: str, table: str) -> str:
        return f"{self.warehouse.rstrip('/')}/{layer}/{table}"

    @property
    def jars_dir(self) -> Path:
        return self.cache_dir / "jars"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        named = os.environ.get("CITYLAKE_CONFIG")
        if named and not Path(named).is_file():
            # A named config that is missing must not silently fall back to local defaults.
            raise FileNotFoundError(f"CITYLAKE_CONFIG names {named}, which does not exist")
        toml_file = Path(named or "citylake.toml")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after patching env)."""
    return Settings()
