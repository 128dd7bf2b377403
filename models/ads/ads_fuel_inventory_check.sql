-- Cockpit indicator ads_fuel_inventory_check (cockpit-indicators.md):
-- gap = opening + delivered − sold − closing; gap_rate = gap ÷ (sold + delivered);
-- flag = gap_rate > 0.005 (疑似漏报).
-- Unknown stays unknown, never zero: without comparable readings on both days (a missing or
-- extra tank) the gap and its rate are null and the row is not flagged; with nothing sold or
-- delivered the rate is null (no division by zero) and the row is not flagged either.
WITH checked AS (
  SELECT
    *,
    CASE WHEN gauge_complete
      THEN CAST(opening_liters + delivered_liters - sold_liters - closing_liters AS DECIMAL(18,3))
    END AS gap_liters
  FROM dws.dws_fuel_station_product_daily
  WHERE biz_date BETWEEN @start_date AND @end_date
),
rated AS (
  SELECT
    *,
    CASE WHEN sold_liters + delivered_liters > 0
      THEN CAST(gap_liters AS DOUBLE) / CAST(sold_liters + delivered_liters AS DOUBLE)
    END AS gap_rate
  FROM checked
)
SELECT
  biz_date,
  station_id,
  product_code,
  opening_liters,
  delivered_liters,
  sold_liters,
  closing_liters,
  gap_liters,
  gap_rate,
  COALESCE(gap_rate > 0.005, false)  AS flag,
  current_timestamp()                AS _computed_at,
  @input_versions() AS _input_versions
FROM rated
