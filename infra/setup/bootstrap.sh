#!/usr/bin/env bash
# Creates .venv with the pinned Python dependencies (requirements.lock) and installs
# citylake into it in editable mode. Idempotent: re-running with an unchanged lock is a no-op.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv
STAMP="$VENV/.installed"
UV_VERSION=0.13.9

die() { echo "citylake setup: $*" >&2; exit 1; }

PYTHON=${CITYLAKE_PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "python3 not found; install Python 3.11 or 3.12."
"$PYTHON" - <<'PY' || die "Python 3.11 or 3.12 is required (found $("$PYTHON" --version 2>&1))."
import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)
PY

if ! command -v java >/dev/null; then
  die "Java not found. Spark needs a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless), or set JAVA_HOME."
fi
JAVA_MAJOR=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${JAVA_MAJOR:-0}" -ge 17 ] || die "Spark 4 needs Java 17 or newer; 'java -version' says ${JAVA_MAJOR:-unknown}."

# The payment source database of tests and the demo is Debian's PostgreSQL server, which
# citylake runs itself from ./var (citylake/postgres.py). Install it when it is missing.
pg_server_present() {
  local bindir
  bindir=$(pg_config --bindir 2>/dev/null || true)
  if [ -n "$bindir" ] && [ -x "$bindir/postgres" ] && [ -x "$bindir/initdb" ]; then return 0; fi
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if ! pg_server_present; then
  command -v apt-get >/dev/null \
    || die "PostgreSQL server binaries (initdb, postgres) not found; install PostgreSQL 15 or newer."
  [ "$(id -u)" -eq 0 ] \
    || die "PostgreSQL server binaries not found; as root run: apt-get install postgresql"
  echo "citylake setup: installing Debian's PostgreSQL server (apt-get install postgresql)"
  # No cluster of Debian's own, so nothing is left running: citylake starts its own by pid.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/citylake.conf
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; } \
    >/dev/null || die "apt-get could not install postgresql; install it and rerun: apt-get install postgresql"
  pg_server_present || die "the postgresql package is installed but initdb/postgres are not found"
fi

# The regulator report's charts are drawn in Chinese (quality/report_charts.py): without a CJK
# font matplotlib draws boxes. Debian's Noto CJK fonts, installed when missing.
if ! fc-list 2>/dev/null | grep -q "Noto Sans CJK"; then
  command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ] \
    || die "no Noto Sans CJK font for the quality report's charts; as root run: apt-get install fonts-noto-cjk"
  echo "citylake setup: installing Debian's CJK fonts (apt-get install fonts-noto-cjk)"
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-cjk; } \
    >/dev/null || die "apt-get could not install fonts-noto-cjk; install it and rerun"
fi

# The cockpit's stack test and benchmark render dashboards in Debian's headless Chromium
# (Selenium from Superset's own venv drives it) with CJK fonts for the Chinese UI.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
    || ! compgen -G '/usr/share/fonts/opentype/noto/NotoSansCJK*' >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "citylake setup: installing Debian's chromium, chromium-driver and fonts-noto-cjk"
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver fonts-noto-cjk; } >/dev/null \
      || die "apt-get could not install chromium; run: apt-get install chromium chromium-driver fonts-noto-cjk"
  else
    echo "citylake setup: chromium/chromium-driver/fonts-noto-cjk missing; the cockpit render" \
      "test needs them (apt-get install chromium chromium-driver fonts-noto-cjk)" >&2
  fi
fi

want=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

INDEX=${PIP_INDEX_URL:-https://pypi.org/simple}
if ! "$PYTHON" - "$INDEX" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/uv/", timeout=20)
except Exception as exc:  # noqa: BLE001
    print(f"cannot reach the Python package index {sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
then
  die "the network to PyPI is needed for the first install (set PIP_INDEX_URL for a mirror)."
fi

echo "citylake setup: creating $VENV with the pinned dependencies (requirements.lock)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
"$VENV/bin/uv" pip sync --quiet --python "$VENV/bin/python" requirements.lock
"$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps -e .
echo "$want" > "$STAMP"
echo "citylake setup: Python environment ready"
