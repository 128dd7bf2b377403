#!/usr/bin/env bash
# Creates .venv-catalog, the environment `citylake catalog sync` publishes from: the
# OpenMetadata client (openmetadata-ingestion) pins versions the main .venv cannot share.
# Pinned by catalog/requirements.txt; re-running with an unchanged file is a no-op.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv-catalog
STAMP="$VENV/.installed"
want=$(sha256sum catalog/requirements.txt | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "citylake setup: creating $VENV for the OpenMetadata client (catalog/requirements.txt)"
[ -x "$VENV/bin/python" ] || "${CITYLAKE_PYTHON:-python3}" -m venv "$VENV"
# uv comes with the main environment (bootstrap.sh runs first).
.venv/bin/uv pip sync --quiet --python "$VENV/bin/python" catalog/requirements.txt
echo "$want" > "$STAMP"
echo "citylake setup: catalog environment ready"
