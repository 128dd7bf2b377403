"""The JVM jars Spark needs beyond pyspark's own, pinned and fetched from Maven Central.

Only the listed artifacts go on ``spark.jars``: their transitive dependencies are either
provided by Spark itself (Scala, Hadoop client, Parquet, Jackson) or unused in our paths, and
adding a second copy of a provided library is a classpath conflict waiting to happen.
The S3 jars join only a Spark session whose warehouse is on object storage (``s3a://``).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from citylake.settings import Settings


@dataclass(frozen=True)
class MavenArtifact:
    group: str
    artifact: str
    version: str

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repository: str) -> str:
        group_path = self.group.replace(".", "/")
        return (
            f"{repository.rstrip('/')}/{group_path}/{self.artifact}/{self.version}/{self.filename}"
        )

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"


DELTA_VERSION = "4.4.0"  # built against Spark 4.2.0; 4.4.1 is on PyPI but not on Maven Central

DELTA_JARS = (
    MavenArtifact("io.delta", "delta-spark_2.13", DELTA_VERSION),
    MavenArtifact("io.delta", "delta-storage", DELTA_VERSION),
)


# s3a:// for Spark: hadoop-aws must be the version of the hadoop-client jars inside pyspark
# (3.5.0 for pyspark 4.2.0), and the AWS SDK v2 bundle the version its POM names. The
# analytics accelerator is a compile-scope dependency of hadoop-aws 3.5 (its input streams).
HADOOP_VERSION = "3.5.0"
S3_JARS = (
    MavenArtifact("org.apache.hadoop", "hadoop-aws", HADOOP_VERSION),
    MavenArtifact("software.amazon.awssdk", "bundle", "2.35.4"),  # 686 MB, fetched once
    MavenArtifact("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3", "1.3.1"),
)
SPARK_JARS = DELTA_JARS + S3_JARS  # what the set-up fetches


class JarResolutionError(RuntimeError):
    pass


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise JarResolutionError(
            f"cannot download {url}: {exc}. Spark's jars come from Maven Central; "
            "check the network or point CITYLAKE_MAVEN_REPOSITORY at a mirror."
        ) from exc


def download_verified(url: str, path: Path, label: str) -> None:
    """Stream `url` to `path`, checked against the SHA-1 Maven publishes beside it.

    Streamed, not held in memory: the AWS SDK bundle alone is 686 MB. The file appears under
    its name only when complete and verified, so a half-written download never looks cached.
    """
    expected = _fetch(url + ".sha1").decode().split()[0].strip()
    digest = hashlib.sha1()
    partial = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise JarResolutionError(
            f"cannot download {url}: {exc}. The set-up fetches from Maven Central; "
            "check the network or point CITYLAKE_MAVEN_REPOSITORY at a mirror."
        ) from exc
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise JarResolutionError(f"{label}: SHA-1 {digest.hexdigest()} != published {expected}")
    partial.replace(path)


def resolve(settings: Settings, artifacts: tuple[MavenArtifact, ...] = SPARK_JARS) -> list[Path]:
    """Download each artifact once into the cache, verified against Maven's published SHA-1."""
    target = settings.jars_dir
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for artifact in artifacts:
        path = target / artifact.filename
        if not path.exists():
            download_verified(artifact.url(settings.maven_repository), path, str(artifact))
        paths.append(path)
    return paths


def spark_artifacts(settings: Settings) -> tuple[MavenArtifact, ...]:
    """What a Spark session of these settings puts on ``spark.jars``."""
    return SPARK_JARS if settings.is_remote_warehouse else DELTA_JARS


def cached_jars(
    settings: Settings, artifacts: tuple[MavenArtifact, ...] = DELTA_JARS
) -> list[Path]:
    """The cached jars, or a clear error telling the user to run the set-up."""
    paths = [settings.jars_dir / a.filename for a in artifacts]
    missing = [str(a) for a, p in zip(artifacts, paths, strict=True) if not p.exists()]
    if missing:
        raise JarResolutionError(
            f"jars not in {settings.jars_dir}: {', '.join(missing)}. Run `make setup` "
            "(or `citylake setup`) once with network access to Maven Central."
        )
    return paths
