/* The rows of a model that break its contract (pipelines/modeling/headers.py `audits`): a
   column check of `criteria` fails (a null check result passes, as in SQLMesh's `forall`), or
   another row has the same `columns` (the primary key). One Spark query per model, where a
   `forall` and a `unique_combination_of_columns` audit cost two (issue #4). */
AUDIT (name contract_rows);

SELECT *
FROM (
  SELECT *, COUNT(*) OVER (PARTITION BY @EACH(@columns, c -> c)) AS _rows_of_key
  FROM @this_model
)
WHERE _rows_of_key > 1 OR @REDUCE(@EACH(@criteria, c -> NOT (c)), (l, r) -> l OR r)
