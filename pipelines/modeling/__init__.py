"""The DWS and ADS layers as a SQLMesh project whose model headers come from the contracts.

``models/<layer>/<table>.sql`` holds only the SELECT; its contract
``warehouse_layers/<layer>/<table>.yaml`` supplies the rest (kind, grain, column types and
descriptions, Delta properties, blocking audits). Tables of other layers that models read
become SQLMesh external models from their contracts, so column lineage reaches DWD and ODS.

- ``headers``: contract -> MODEL header and audits (pure text, no engine);
- ``loader``: the SQLMesh loader that joins headers and SELECTs, and reads the YAML tests;
- ``engine``: the Delta flavour of SQLMesh's Spark engine and the catalog bootstrap;
- ``project``: the SQLMesh configuration and context for a citylake Settings;
- ``runner``: build a date range (fill, restate, roll back on a failed audit);
- ``lineage``: column lineage from the models, without a JVM.
"""

import os

# SQLMesh loads models and state snapshots in a fork()ed process pool. Forking a process that
# holds a live JVM (py4j threads, locks) can hang the children forever: seen in the test suite
# in SnapshotCache.get_or_load. One worker makes SQLMesh load in-process. Set before any import
# of sqlmesh, which reads it at import time (project.py also pins the constant).
os.environ.setdefault("MAX_FORK_WORKERS", "1")
