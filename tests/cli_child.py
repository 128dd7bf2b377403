"""Runs citylake commands in one process: ``python tests/cli_child.py '[["ingest", ...], ...]'``.

Tests that need the user's commands with settings from the environment alone, but one JVM for
all of them, run this as a child. A file, not ``python -c``: with ``-c`` pyspark's doctest guard
exits the process silently on import.
"""

from __future__ import annotations

import json
import sys

from citylake.cli import app


def main(commands: list[list[str]]) -> int:
    for argv in commands:
        code = app(argv, standalone_mode=False)  # an exit code, or an exception, on failure
        if code:
            return int(code)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
