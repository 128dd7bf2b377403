"""Settings: defaults, CITYLAKE_* environment, citylake.toml / CITYLAKE_CONFIG, spark_conf.

Pure Python: `citylake.spark.spark_conf` builds a dict; nothing here starts a JVM.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from citylake.settings import Settings, get_settings
from citylake.spark import DELTA_CONF, spark_conf

TOML = """\
warehouse = "s3a://lake/w"

[spark]
master = "spark://h:7077"
driver_memory = "8g"
"""


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No CITYLAKE_* variables, an empty working directory, a fresh settings cache."""
    for name in list(os.environ):
        if name.upper().startswith("CITYLAKE_"):
            monkeypatch.delenv(name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    get_settings.cache_clear()
    yield cwd
    get_settings.cache_clear()


def _python(
    code: str, *, timeout: int = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`code` run by this interpreter in a fresh process: imports and threads start clean."""
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def test_defaults_are_the_embedded_mode(clean: Path) -> None:
    s = Settings()
    assert Path(s.warehouse).is_absolute()
    assert s.warehouse.endswith("var/lakehouse")
    assert s.warehouse == str(clean.resolve() / "var" / "lakehouse")
    assert s.landing == str(clean.resolve() / "var" / "landing")
    assert s.var_dir == clean.resolve() / "var"
    assert not s.is_remote_warehouse
    assert s.spark.master == "local[*]"
    assert s.spark.connect_url is None
    assert s.s3.endpoint.startswith("http://")
    assert s.timezone == "Asia/Shanghai"
    assert s.contracts_dir.is_dir() and (s.contracts_dir / "ods").is_dir()
    assert s.table_path("ads", "ads_trade_daily") == f"{s.warehouse}/ads/ads_trade_daily"


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("CITYLAKE_SPARK__MASTER", "spark://other:7077")
    assert get_settings().spark.master == "local[*]"  # cached
    get_settings.cache_clear()
    assert get_settings().spark.master == "spark://other:7077"


@pytest.mark.parametrize(
    ("env", "value", "check"),
    [
        ("CITYLAKE_WAREHOUSE", "s3a://bucket/lake", lambda s: s.warehouse == "s3a://bucket/lake"),
        ("CITYLAKE_WAREHOUSE", "s3a://bucket/lake", lambda s: s.is_remote_warehouse),
        ("CITYLAKE_WAREHOUSE", "s3://bucket/lake", lambda s: s.is_remote_warehouse),
        (
            "CITYLAKE_WAREHOUSE",
            "elsewhere/lake",
            lambda s: s.warehouse == str(Path.cwd().resolve() / "elsewhere" / "lake"),
        ),
        ("CITYLAKE_SPARK__MASTER", "spark://h:7077", lambda s: s.spark.master == "spark://h:7077"),
        (
            "CITYLAKE_SPARK__CONNECT_URL",
            "sc://127.0.0.1:15002",
            lambda s: s.spark.connect_url == "sc://127.0.0.1:15002",
        ),
        ("CITYLAKE_SPARK__SHUFFLE_PARTITIONS", "16", lambda s: s.spark.shuffle_partitions == 16),
        (
            "CITYLAKE_SPARK__EXTRA_CONF",
            '{"spark.executor.memory": "2g"}',
            lambda s: s.spark.extra_conf == {"spark.executor.memory": "2g"},
        ),
        (
            "CITYLAKE_S3__ENDPOINT",
            "http://minio:9000",
            lambda s: s.s3.endpoint == "http://minio:9000",
        ),
        ("CITYLAKE_S3__PATH_STYLE", "false", lambda s: s.s3.path_style is False),
        (
            "CITYLAKE_S3__SECRET_KEY",
            "s3cr3t",
            lambda s: s.s3.secret_key.get_secret_value() == "s3cr3t" and "s3cr3t" not in repr(s),
        ),
        ("CITYLAKE_TIMEZONE", "UTC", lambda s: s.timezone == "UTC"),
        ("citylake_spark__master", "yarn", lambda s: s.spark.master == "yarn"),
    ],
    ids=[
        "warehouse",
        "warehouse-remote",
        "warehouse-s3",
        "warehouse-relative",
        "spark-master",
        "spark-connect",
        "shuffle-partitions",
        "extra-conf-json",
        "s3-endpoint",
        "s3-path-style",
        "s3-secret",
        "timezone",
        "lower-case-name",
    ],
)
def test_environment_overrides(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, check: Callable[[Settings], bool]
) -> None:
    monkeypatch.setenv(env, value)
    assert check(Settings())
    get_settings.cache_clear()
    assert check(get_settings())


def test_an_invalid_environment_value_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITYLAKE_SPARK__SHUFFLE_PARTITIONS", "many")
    with pytest.raises(ValidationError, match="shuffle_partitions"):
        Settings()


def test_citylake_toml_in_the_working_directory(clean: Path) -> None:
    (clean / "citylake.toml").write_text(TOML, encoding="utf-8")
    s = Settings()
    assert s.is_remote_warehouse
    assert s.warehouse == "s3a://lake/w"
    assert s.table_path("ads", "ads_trade_daily") == "s3a://lake/w/ads/ads_trade_daily"
    assert s.table_path("ods", "ods_pay_transactions") == "s3a://lake/w/ods/ods_pay_transactions"
    assert s.spark.master == "spark://h:7077"
    assert s.spark.driver_memory == "8g"
    assert s.spark.app_name == "citylake"  # untouched defaults survive


def test_trailing_slash_in_warehouse(clean: Path) -> None:
    assert Settings(warehouse="s3a://lake/w/").table_path("dwd", "t") == "s3a://lake/w/dwd/t"


def test_environment_beats_toml_and_nested_sections_merge(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean / "citylake.toml").write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("CITYLAKE_SPARK__MASTER", "yarn")
    monkeypatch.setenv("CITYLAKE_WAREHOUSE", "s3a://other/w")
    s = Settings()
    assert s.spark.master == "yarn"
    assert s.spark.driver_memory == "8g"  # from the toml, same section
    assert s.warehouse == "s3a://other/w"


def test_keyword_arguments_beat_environment_and_toml(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean / "citylake.toml").write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("CITYLAKE_WAREHOUSE", "s3a://env/w")
    assert Settings(warehouse="s3a://kw/w").warehouse == "s3a://kw/w"


def test_citylake_config_names_another_toml(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean / "citylake.toml").write_text('warehouse = "s3a://cwd/w"\n', encoding="utf-8")
    other = tmp_path / "etc" / "prod.toml"
    other.parent.mkdir()
    other.write_text('warehouse = "s3a://prod/w"\n[s3]\nendpoint = "http://s3.prod:9000"\n')
    monkeypatch.setenv("CITYLAKE_CONFIG", str(other))
    s = Settings()
    assert s.warehouse == "s3a://prod/w"
    assert s.s3.endpoint == "http://s3.prod:9000"
    get_settings.cache_clear()
    assert get_settings().warehouse == "s3a://prod/w"


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('warehous = "s3a://lake/w"\n', "warehous"),
        ('warehouse = "s3a://lake/w"\nspark_master = "yarn"\n', "spark_master"),
    ],
)
def test_an_unknown_toml_key_is_rejected(clean: Path, toml: str, field: str) -> None:
    (clean / "citylake.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        Settings()
    errors = caught.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [((field,), "extra_forbidden")]
    assert "Extra inputs are not permitted" in str(caught.value)
    assert field in str(caught.value)


def test_a_wrong_toml_type_is_rejected(clean: Path) -> None:
    (clean / "citylake.toml").write_text("[spark]\nshuffle_partitions = [1]\n")
    with pytest.raises(ValidationError, match=r"spark\.shuffle_partitions"):
        Settings()


@pytest.mark.parametrize(
    "toml",
    ['[spark]\nmastr = "spark://h:7077"\n', '[s3]\nendpiont = "http://minio:9000"\n'],
    ids=["spark", "s3"],
)
def test_an_unknown_nested_toml_key_is_rejected(clean: Path, toml: str) -> None:
    (clean / "citylake.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings()


def test_an_unknown_nested_environment_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYLAKE_SPARK__MASTR", "yarn")
    with pytest.raises(ValidationError, match="mastr"):
        Settings()


def test_citylake_config_naming_a_missing_file_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYLAKE_CONFIG", str(tmp_path / "etc" / "prdo.toml"))
    with pytest.raises((FileNotFoundError, ValueError)):
        Settings()


def test_an_object_store_landing_zone_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYLAKE_LANDING", "s3a://lake/landing")
    assert Settings().landing == "s3a://lake/landing"


# --- spark_conf -----------------------------------------------------------------------------


def test_spark_conf_for_an_s3a_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYLAKE_WAREHOUSE", "s3a://lake/w")
    monkeypatch.setenv("CITYLAKE_S3__ENDPOINT", "http://minio:9000")
    monkeypatch.setenv("CITYLAKE_S3__ACCESS_KEY", "lake-user")
    monkeypatch.setenv("CITYLAKE_S3__SECRET_KEY", "lake-secret")
    monkeypatch.setenv("CITYLAKE_S3__REGION", "cn-north-1")
    conf = spark_conf(Settings())
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert conf["spark.hadoop.fs.s3a.access.key"] == "lake-user"
    assert conf["spark.hadoop.fs.s3a.secret.key"] == "lake-secret"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "cn-north-1"
    assert conf["spark.hadoop.fs.s3a.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert (
        conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    )
    assert all(isinstance(v, str) for v in conf.values())


def test_spark_conf_for_a_local_warehouse(clean: Path) -> None:
    s = Settings()
    conf = spark_conf(s)
    assert DELTA_CONF.items() <= conf.items()
    assert not [k for k in conf if "s3a" in k]
    assert conf["spark.sql.session.timeZone"] == "Asia/Shanghai"
    assert conf["spark.sql.shuffle.partitions"] == str(os.cpu_count())  # one per core
    assert conf["spark.sql.warehouse.dir"] == str(clean.resolve() / "var" / "spark-warehouse")
    assert str(clean.resolve() / "var" / "derby") in conf["spark.driver.extraJavaOptions"]
    assert all(isinstance(v, str) for v in conf.values())


def test_shuffle_partitions_are_spark_s_own_on_a_cluster_unless_set() -> None:
    assert "spark.sql.shuffle.partitions" not in spark_conf(Settings(spark={"master": "yarn"}))
    conf = spark_conf(Settings(spark={"master": "yarn", "shuffle_partitions": 48}))
    assert conf["spark.sql.shuffle.partitions"] == "48"


def test_spark_conf_extra_conf_wins() -> None:
    s = Settings(
        warehouse="s3a://lake/w",
        spark={"extra_conf": {"spark.sql.shuffle.partitions": "64", "spark.x": "y"}},
        s3={"secret_key": SecretStr("k")},
    )
    conf = spark_conf(s)
    assert conf["spark.sql.shuffle.partitions"] == "64"
    assert conf["spark.x"] == "y"
    assert conf["spark.hadoop.fs.s3a.secret.key"] == "k"


def test_importing_citylake_spark_starts_no_jvm() -> None:
    code = (
        "import sys, citylake.spark\n"
        "from citylake.settings import Settings\n"
        "citylake.spark.spark_conf(Settings())\n"
        "assert 'pyspark' not in sys.modules, 'pyspark imported'\n"
        "assert 'py4j' not in sys.modules, 'py4j imported'\n"
    )
    done = _python(code, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_background_start_imports_pyspark_before_its_thread_runs() -> None:
    # pyspark's modules import each other in cycles: when the start thread and the caller's
    # imports of the pipelines ran them at once, one side could find a module half-made (CI,
    # stop 23: "cannot import name '_dedup_names' from partially initialized module"). So the
    # caller imports them before the thread exists; here the thread is kept from running.
    code = (
        "import sys, threading\n"
        "threading.Thread.start = lambda self: None\n"
        "from citylake.spark import start_in_background\n"
        "start_in_background()\n"
        "assert 'pyspark.sql.classic.dataframe' in sys.modules, 'left to the thread'\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.spark
def test_a_session_started_in_the_background_is_the_one_the_build_gets(tmp_path: Path) -> None:
    # The CLI and the Airflow tasks start the JVM on a thread while the pipelines import; the
    # build's own get_spark then waits for that start and gets that session, not a second one.
    code = (
        "import threading\n"
        "from citylake.spark import get_spark, start_in_background\n"
        "start_in_background()\n"
        "assert any(t.name == 'spark-start' for t in threading.enumerate())\n"
        "import pipelines.build\n"
        "spark = get_spark()\n"
        "assert spark.range(3).count() == 3\n"
        "from pyspark import SparkContext\n"
        "assert SparkContext._active_spark_context is spark.sparkContext\n"
        "print(spark.sparkContext.applicationId)\n"
    )
    env = {**os.environ, "CITYLAKE_VAR_DIR": str(tmp_path / "var")}
    done = _python(code, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().startswith("local-")
