"""The JVM jars Spark needs beyond pyspark's own, pinned and fetched from Maven Central.

Only the listed artifacts go on ``spark.jars``: their transitive dependencies are either
provided by Spark itself (Scala, Hadoop client, Parquet, Jackson) or unused in our paths, and
adding a second copy of a provided library is a classpath conflict waiting to happen.
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


class JarResolutionError(RuntimeError):
    pass


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise JarResolutionError(
            f"cannot download {url}: {exc}. Spark's Delta jars come from Maven Central; "
            "check the network or point CITYLAKE_MAVEN_REPOSITORY at a mirror."
        ) from exc


def resolve(settings: Settings, artifacts: tuple[MavenArtifact, ...] = DELTA_JARS) -> list[Path]:
    """Download each artifact once into the cache, verified against Maven's published SHA-1."""
    target = settings.jars_dir
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for artifact in artifacts:
        path = target / artifact.filename
        if not path.exists():
            url = artifact.url(settings.maven_repository)
            payload = _fetch(url)
            expected = _fetch(url + ".sha1").decode().split()[0].strip()
            actual = hashlib.sha1(payload).hexdigest()
            if actual != expected:
                raise JarResolutionError(f"{artifact}: SHA-1 {actual} != published {expected}")
            partial = path.with_suffix(".part")
            partial.write_bytes(payload)
            partial.replace(path)  # atomic: a half-written jar never looks cached
        paths.append(path)
    return paths


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
