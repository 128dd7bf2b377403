-- Fuel balance per station, product and day: the terms of ads_fuel_inventory_check.
-- A tank's stock at the end of a day is its last reading of that day (the generator's and the
-- gauges' 23:59:59 日结 reading); a product's stock sums the station's tanks of that product.
-- Opening is the previous day's closing, so readings are read from the day before the first day built.
-- A station-product-day appears when anything happened: a sale, a delivery or a reading on the
-- day or the day before (a gauge that fell silent shows as a row without closing).
WITH last_reading AS (
  SELECT biz_date, station_id, tank_id, product_code, volume_liters
  FROM (
    SELECT
      *,
      ROW_NUMBER() OVER (
        PARTITION BY biz_date, station_id, tank_id ORDER BY reading_time DESC
      ) AS latest
    FROM dwd.dwd_tank_reading
    WHERE biz_date BETWEEN date_sub(@start_date, 1) AND @end_date
  )
  WHERE latest = 1
),
stock AS (
  SELECT
    biz_date,
    station_id,
    product_code,
    SUM(volume_liters)                 AS liters,
    array_sort(collect_list(tank_id))  AS tanks
  FROM last_reading
  GROUP BY biz_date, station_id, product_code
),
opening AS (
  SELECT date_add(biz_date, 1) AS biz_date, station_id, product_code, liters, tanks FROM stock
),
sold AS (
  SELECT biz_date, station_id, product_code, SUM(liters) AS liters
  FROM dwd.dwd_fuel_sale
  WHERE biz_date BETWEEN @start_date AND @end_date
  GROUP BY biz_date, station_id, product_code
),
delivered AS (
  SELECT biz_date, station_id, product_code, SUM(liters) AS liters
  FROM dwd.dwd_fuel_delivery
  WHERE biz_date BETWEEN @start_date AND @end_date
  GROUP BY biz_date, station_id, product_code
),
grain AS (
  SELECT biz_date, station_id, product_code FROM sold
  UNION SELECT biz_date, station_id, product_code FROM delivered
  UNION SELECT biz_date, station_id, product_code FROM stock
  UNION SELECT biz_date, station_id, product_code FROM opening
)
SELECT
  g.biz_date,
  g.station_id,
  g.product_code,
  o.liters                                            AS opening_liters,
  COALESCE(d.liters, 0)                               AS delivered_liters,
  COALESCE(s.liters, 0)                               AS sold_liters,
  c.liters                                            AS closing_liters,
  COALESCE(size(o.tanks), 0)                          AS opening_tanks,
  COALESCE(size(c.tanks), 0)                          AS closing_tanks,
  -- Comparable only when the same tanks were read on both days: a tank missing on one side
  -- would otherwise show its whole content as a gap.
  COALESCE(o.tanks = c.tanks, false)                  AS gauge_complete
FROM grain g
LEFT JOIN opening o   USING (biz_date, station_id, product_code)
LEFT JOIN stock c     USING (biz_date, station_id, product_code)
LEFT JOIN sold s      USING (biz_date, station_id, product_code)
LEFT JOIN delivered d USING (biz_date, station_id, product_code)
WHERE g.biz_date BETWEEN @start_date AND @end_date
