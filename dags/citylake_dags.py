"""Every citylake Airflow DAG, generated from the table contracts (pipelines/orchestration.py).

A feed's contract in warehouse_layers/ods/ is all a new feed needs: its DAG, and its place in
its domain's layer DAG schedule, appear here without Python written.
"""

from pipelines.orchestration import generate

globals().update(generate())
