"""The project's own Trino: SQL over the warehouse's Delta tables for analysts and the cockpit.

The set-up fetches the pinned server tarball and the CLI jar from Maven Central (SHA-1
checked) and keeps only what a one-node lakehouse needs: ``lib/`` and the Delta Lake plugin,
in ``.cache/trino/<version>/``. The server runs on a JDK new enough for it (24+: the machine's
Temurin 25) as one coordinator that also executes queries, bound to 127.0.0.1, with its
configuration and data under ``<var>/trino/``::

    etc/config.properties     server, node and paths (written on every start from settings)
    etc/catalog/<catalog>.properties   Delta Lake connector over the warehouse
    data/                     node data (logs of the engine, spill)
    metastore/                the file metastore of a local warehouse (an s3a:// warehouse
                              keeps it beside its layers, ``<warehouse>/_trino_metastore``)

The metastore is Trino's file metastore (``hive.metastore=file``): no Hive metastore service
to run, and a table is only a pointer to its Delta location, so Spark and delta-rs stay the
only writers and Trino always reads the latest committed snapshot. `register` adds the
warehouse's tables (schemas ``ods``, ``dwd``, ``dws``, ``ads``) that are not yet known; a build
calls it at its end when Trino runs. The JVM is started directly (no launcher), so the pid
recorded is the server's own and it is stopped by exactly that pid.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from citylake import processes
from citylake.jars import MavenArtifact, download_verified
from citylake.processes import Service
from citylake.settings import Settings, get_settings

SERVICE = "trino"
VERSION = "476"  # the newest trino-server on Maven Central here; needs Java 24+
SERVER = MavenArtifact("io.trino", "trino-server", VERSION)
CLI = MavenArtifact("io.trino", "trino-cli", VERSION)
# The one plugin a lakehouse of Delta tables needs. trino-server-core plus plugin zips would
# be a smaller download, but the delta-lake plugin zip of this version is not on Maven
# Central; the full tarball is, and everything else in it is skipped on extraction.
PLUGINS = ("delta-lake",)
MIN_JAVA = 24
LAYERS = ("ods", "dwd", "dws", "ads")
_LOOPBACK = ("127.0.0.1", "localhost")


class TrinoError(RuntimeError):
    pass


def home(settings: Settings) -> Path:
    """The unpacked server: lib/ and plugin/<PLUGINS>."""
    return settings.cache_dir / "trino" / VERSION / "server"


def cli_jar(settings: Settings) -> Path:
    return settings.cache_dir / "trino" / VERSION / f"trino-cli-{VERSION}-executable.jar"


def root_dir(settings: Settings) -> Path:
    return settings.var_dir / "trino"


def _wanted(member: str) -> str | None:
    """The path below the install root of a tarball member we keep, else None."""
    parts = member.split("/", 1)
    if len(parts) < 2:
        return None
    rest = parts[1]
    if rest.startswith("lib/") or any(rest.startswith(f"plugin/{p}/") for p in PLUGINS):
        return rest
    return None


def _unpack(tarball: Path, dest: Path) -> None:
    """Extract the kept members of the server tarball into `dest`.

    The tarball stores each jar once and hard-links its other copies, often to a plugin we do
    not keep; so a first pass notes which stored files the kept links point to, and the
    second writes each such file once, linked under every kept name.
    """
    names: dict[str, list[str]] = {}  # stored member -> the kept paths that hold its bytes
    with tarfile.open(tarball, "r|gz") as archive:
        for member in archive:
            rest = _wanted(member.name)
            if rest is not None and member.isfile():
                names.setdefault(member.name, []).insert(0, rest)
            elif rest is not None and member.islnk():
                names.setdefault(member.linkname, []).append(rest)
    with tarfile.open(tarball, "r|gz") as archive:
        for member in archive:
            kept = names.get(member.name) if member.isfile() else None
            if not kept:
                continue
            paths = [dest / rest for rest in kept]
            if any(".." in Path(rest).parts for rest in kept):
                raise TrinoError(f"unsafe path in the Trino tarball: {kept}")
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has content
            with paths[0].open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            for other in paths[1:]:
                other.parent.mkdir(parents=True, exist_ok=True)
                os.link(paths[0], other)  # the same bytes, no second copy on disk


def install(settings: Settings | None = None) -> Path:
    """Fetch and unpack the pinned server and CLI once; the cached install after."""
    settings = settings or get_settings()
    target = home(settings)
    base = target.parent
    base.mkdir(parents=True, exist_ok=True)
    if not cli_jar(settings).is_file():
        cli_url = f"{CLI.url(settings.maven_repository).removesuffix('.jar')}-executable.jar"
        download_verified(cli_url, cli_jar(settings), f"{CLI}:executable")
    if target.is_dir():
        return target
    tarball = base / f"trino-server-{VERSION}.tar.gz"
    url = SERVER.url(settings.maven_repository).removesuffix(".jar") + ".tar.gz"
    download_verified(url, tarball, f"{SERVER}:tar.gz")  # ~820 MB, deleted once unpacked
    scratch = base / "server.unpack"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        _unpack(tarball, scratch)
        scratch.rename(target)  # only a complete unpack takes the cached name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        tarball.unlink(missing_ok=True)
    return target


def java_home(settings: Settings) -> Path:
    """A JDK that runs Trino: the configured one, else the newest (24+) under /usr/lib/jvm."""
    configured = settings.trino.java_home
    candidates = [configured] if configured else sorted(Path("/usr/lib/jvm").glob("*"))
    found: list[tuple[int, Path]] = []
    for jdk in candidates:
        major = _java_major(jdk)
        if major is not None and major >= MIN_JAVA and (jdk / "bin" / "java").is_file():
            found.append((major, jdk))
    if not found:
        where = str(configured) if configured else "/usr/lib/jvm"
        raise TrinoError(
            f"Trino {VERSION} needs Java {MIN_JAVA} or newer and none was found in {where}: "
            "install one (e.g. Temurin 25) and set CITYLAKE_TRINO__JAVA_HOME to it"
        )
    return max(found)[1]


def _java_major(jdk: Path) -> int | None:
    try:
        release = (jdk / "release").read_text()
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', release, re.MULTILINE)
    return int(match.group(1)) if match else None


def _local_uri(path: Path | str) -> str:
    return f"local://{Path(path).resolve()}"


def table_location(settings: Settings, layer: str, table: str) -> str:
    """Where Trino finds a warehouse table: s3a:// as Spark writes it, or local:///path."""
    path = settings.table_path(layer, table)
    return path if settings.is_remote_warehouse else _local_uri(path)


def catalog_properties(settings: Settings) -> dict[str, str]:
    """The Delta Lake catalog over the warehouse: one file system per catalog, by settings."""
    props = {
        "connector.name": "delta_lake",
        "hive.metastore": "file",
        # Tables are registered where Spark wrote them; Trino never creates or moves them.
        "delta.register-table-procedure.enabled": "true",
        "delta.enable-non-concurrent-writes": "false",
    }
    if settings.is_remote_warehouse:
        s3 = settings.s3
        props |= {
            "fs.native-s3.enabled": "true",
            "s3.endpoint": s3.endpoint,
            "s3.region": s3.region,
            "s3.path-style-access": str(s3.path_style).lower(),
            "s3.aws-access-key": s3.access_key,
            "s3.aws-secret-key": s3.secret_key.get_secret_value(),
            "hive.metastore.catalog.dir": f"{settings.warehouse.rstrip('/')}/_trino_metastore",
        }
    else:
        props |= {
            "fs.native-local.enabled": "true",
            "local.location": "/",  # local:///<path> names <path> from the root
            "hive.metastore.catalog.dir": _local_uri(root_dir(settings) / "metastore"),
        }
    return props


def _node_id(settings: Settings) -> str:
    # Stable across restarts: Trino names its node in logs and system tables by it.
    path = root_dir(settings) / "node.id"
    if not path.exists():
        path.write_text(f"citylake-{uuid.uuid4()}\n")
    return path.read_text().strip()


def server_properties(settings: Settings) -> dict[str, str]:
    trino, root = settings.trino, root_dir(settings)
    return {
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "http-server.http.port": str(trino.port),
        "discovery.uri": f"http://127.0.0.1:{trino.port}",
        "node.environment": "citylake",
        "node.id": _node_id(settings),
        "node.bind-ip": "127.0.0.1",  # the HTTP server listens on loopback only
        "node.internal-address": "127.0.0.1",
        "plugin.dir": str(home(settings) / "plugin"),
        "catalog.config-dir": str(root / "etc" / "catalog"),
        # Department grants (catalog/trino_rules.py); the default path is relative to the cwd.
        "access-control.config-files": str(root / "etc" / "access-control.properties"),
        # One small node on a shared 2-core machine: bound memory and parallelism.
        "query.max-memory": "1GB",
        "query.max-memory-per-node": "1GB",
        "task.concurrency": "2",
    }


def _write_properties(path: Path, props: dict[str, str], *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{k}={v}\n" for k, v in props.items())
    partial = path.with_name(path.name + ".part")
    partial.write_text(text)
    if private:
        partial.chmod(0o600)  # it holds the object store's secret key
    partial.replace(path)


def configure(settings: Settings) -> Path:
    """Write etc/ from the settings (every start: a changed setting takes effect)."""
    etc = root_dir(settings) / "etc"
    for sub in ("data", "metastore"):
        (root_dir(settings) / sub).mkdir(parents=True, exist_ok=True)
    _write_properties(etc / "config.properties", server_properties(settings))
    _write_properties(etc / "log.properties", {"io.trino": "WARN"})
    catalogs = etc / "catalog"
    catalogs.mkdir(parents=True, exist_ok=True)
    for stale in catalogs.glob("*.properties"):
        stale.unlink()
    _write_properties(
        catalogs / f"{settings.trino.catalog}.properties",
        catalog_properties(settings),
        private=True,
    )
    # Who reads what: rules generated from the department grants, reread every refresh period.
    from catalog.trino_rules import access_control_properties, ensure_rules

    ensure_rules(settings)
    _write_properties(etc / "access-control.properties", access_control_properties(settings))
    return etc


def _server_argv(settings: Settings, etc: Path) -> list[str]:
    jdk = java_home(settings)
    return [
        str(jdk / "bin" / "java"),
        "-server",
        f"-Xmx{settings.trino.heap}",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:-OmitStackTraceInFastThrow",
        "-XX:ReservedCodeCacheSize=256M",
        "-XX:+EnableDynamicAgentLoading",
        "-Djdk.attach.allowAttachSelf=true",
        "-Dfile.encoding=UTF-8",
        "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow",
        f"-Dconfig={etc / 'config.properties'}",
        f"-Dlog.levels-file={etc / 'log.properties'}",
        "-cp",
        f"{home(settings) / 'lib'}/*",
        "io.trino.server.TrinoServer",
    ]


def start_trino(settings: Settings | None = None) -> Service:
    """Start Trino (a running one is reused) and wait until it answers queries."""
    settings = settings or get_settings()
    trino = settings.trino
    if trino.host not in _LOOPBACK:
        raise TrinoError(
            f"trino.host is {trino.host}: that server is not ours to start (the project "
            "starts Trino on 127.0.0.1 only)"
        )
    svc = processes.service(SERVICE, settings)
    if not svc.running:
        if not (home(settings) / "lib").is_dir():
            raise TrinoError(
                f"Trino {VERSION} is not installed in {home(settings)}: run `make setup` "
                "(or `citylake setup`) once with Maven Central reachable"
            )
        if processes.port_taken("127.0.0.1", trino.port):
            raise TrinoError(
                f"127.0.0.1:{trino.port} is already taken by another program; choose another "
                "port (CITYLAKE_TRINO__PORT)"
            )
        etc = configure(settings)
        jdk = java_home(settings)
        svc = processes.start(
            SERVICE,
            _server_argv(settings, etc),
            env={"JAVA_HOME": str(jdk)},
            cwd=root_dir(settings) / "data",  # the server's data dir is its working dir
            settings=settings,
        )
    try:
        _wait_ready(settings, svc)
    except BaseException:
        processes.stop(SERVICE, settings=settings)
        raise
    return svc


def stop_trino(settings: Settings | None = None) -> bool:
    """Stop Trino by the pid it was started with; True if it was running."""
    return processes.stop(SERVICE, settings=settings or get_settings())


def _wait_ready(settings: Settings, svc: Service) -> None:
    """Until the coordinator has finished starting (``/v1/info`` says ``starting: false``)."""
    deadline = time.monotonic() + settings.trino.start_timeout_seconds
    while True:
        try:
            info = httpx.get(f"{settings.trino.url}/v1/info", timeout=2).json()
            # The coordinator also schedules work: until it has announced itself as a node
            # a scan fails with NO_NODES_AVAILABLE (SELECT 1 does not need a node), so
            # "ready" means the coordinator lists an active node.
            if info.get("starting") is False and _has_an_active_node(settings):
                return
        except (httpx.HTTPError, ValueError):
            pass
        if not svc.running:
            tail = svc.log_file.read_text(errors="replace")[-3000:] if svc.log_file.exists() else ""
            raise TrinoError(f"Trino exited during start-up; its log ends:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Trino not ready at {settings.trino.url} after the start timeout")
        time.sleep(0.5)


def _has_an_active_node(settings: Settings) -> bool:
    sql = "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'"
    try:
        return query(sql, settings, timeout=30).rows[0][0] > 0
    except (TrinoError, TimeoutError):
        return False


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]


def query(sql: str, settings: Settings | None = None, *, timeout: float = 300.0) -> QueryResult:
    """Run one statement through Trino's client protocol (POST, then follow ``nextUri``)."""
    settings = settings or get_settings()
    trino = settings.trino
    headers = {
        "X-Trino-User": trino.user,
        "X-Trino-Catalog": trino.catalog,
        "X-Trino-Source": "citylake",
    }
    try:
        return _run(sql, trino.url, headers, timeout)
    except httpx.HTTPError as exc:
        raise TrinoError(f"Trino at {trino.url}: {exc}") from exc


# A coordinator refreshes its node list every few seconds; a query it had no node for did
# nothing, so it is sent again for this long before the error stands.
NO_NODES_RETRY_SECONDS = 60.0


def _run(sql: str, url: str, headers: dict[str, str], timeout: float) -> QueryResult:
    deadline = time.monotonic() + timeout
    retry_until = time.monotonic() + min(NO_NODES_RETRY_SECONDS, timeout)
    while True:
        try:
            return _run_once(sql, url, headers, deadline, timeout)
        except TrinoError as exc:
            if not str(exc).startswith("NO_NODES_AVAILABLE") or time.monotonic() > retry_until:
                raise
        time.sleep(1)


def _run_once(
    sql: str, url: str, headers: dict[str, str], deadline: float, timeout: float
) -> QueryResult:
    columns: list[str] = []
    rows: list[list[Any]] = []
    with httpx.Client(timeout=60, headers=headers) as client:
        response = client.post(f"{url}/v1/statement", content=sql.encode())
        response.raise_for_status()
        page = response.json()
        while True:
            if "error" in page:
                error = page["error"]
                raise TrinoError(f"{error.get('errorName')}: {error.get('message')}")
            if not columns and page.get("columns"):
                columns = [c["name"] for c in page["columns"]]
            rows += page.get("data") or []
            next_uri = page.get("nextUri")
            if not next_uri:
                return QueryResult(columns, rows)
            if time.monotonic() > deadline:
                client.delete(next_uri)  # cancel: never leave a query running behind us
                raise TimeoutError(f"query still running after {timeout:.0f} s")
            response = client.get(next_uri)
            while response.status_code in (502, 503, 504):  # busy: the protocol says retry
                time.sleep(0.1)
                response = client.get(next_uri)
            response.raise_for_status()
            page = response.json()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def register(names: Sequence[tuple[str, str]], settings: Settings | None = None) -> list[str]:
    """Register the warehouse tables (layer, table) Trino does not know yet; the new names.

    A registered table is a pointer to its Delta location: later commits by Spark or delta-rs
    are seen without registering again. A table whose location holds no Delta log yet is
    skipped (nothing has been written to it).
    """
    settings = settings or get_settings()
    catalog = _quote(settings.trino.catalog)
    known = {
        (r[0], r[1])
        for r in query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema IN ({', '.join(_literal(layer) for layer in LAYERS)})",
            settings,
        ).rows
    }
    schemas = {r[0] for r in query("SHOW SCHEMAS", settings).rows}
    added = []
    for layer, table in names:
        if (layer, table) in known:
            continue
        if layer not in schemas:
            query(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{_quote(layer)}", settings)
            schemas.add(layer)
        try:
            query(
                f"CALL {catalog}.system.register_table(schema_name => {_literal(layer)}, "
                f"table_name => {_literal(table)}, "
                f"table_location => {_literal(table_location(settings, layer, table))})",
                settings,
            )
        except TrinoError as exc:
            if "No transaction log found" in str(exc) or "not a Delta Lake table" in str(exc):
                continue
            raise
        added.append(f"{layer}.{table}")
    return added


def register_warehouse(settings: Settings | None = None) -> list[str]:
    """Register every contract table of the warehouse that exists and is not yet known."""
    from pipelines import tables

    settings = settings or get_settings()
    names = [(c.layer, c.name) for c in tables.contracts(settings).values() if c.layer in LAYERS]
    return register(names, settings)


def cli_argv(settings: Settings | None = None) -> list[str]:
    """The interactive Trino CLI, on the same JDK, connected to our server and catalog."""
    settings = settings or get_settings()
    return [
        str(java_home(settings) / "bin" / "java"),
        "-jar",
        str(cli_jar(settings)),
        "--server",
        settings.trino.url,
        "--catalog",
        settings.trino.catalog,
        "--user",
        settings.trino.user,
    ]


def running(settings: Settings | None = None) -> bool:
    return processes.service(SERVICE, settings or get_settings()).running
