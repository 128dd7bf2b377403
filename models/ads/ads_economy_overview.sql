-- Cockpit indicator ads_economy_overview (cockpit-indicators.md): per month trade_net_fen,
-- trade_mom, trade_yoy, active_merchants, new_enterprises, closed_enterprises, backflow_rate and
-- tax_total_yuan.
-- - Trade from dws_trade_merchant_daily: refunds and reversals are already on the ORIGINAL's
--   day, so a December refund of a November payment lowers November. active_merchants counts
--   merchants with a successful transaction in the month (not the sum of the daily counts).
-- - trade_mom = this month ÷ the previous calendar month − 1, trade_yoy = this month ÷ the same
--   month a year before − 1; null when that month has no payment data or its net is not
--   positive (no base), never a division by zero.
-- - new_enterprises: the current registry version's established_date is in the month.
--   closed_enterprises: the first 注销/吊销 version of a closing took effect in the month
--   (dwd_enterprise.closed_date, that version's day; its valid_from would be 1900-01-01 for an
--   enterprise first delivered already closed). 迁出 is not a closing (source-feeds.md).
-- - backflow_rate: the month's local ÷ net over all districts of ads_fund_backflow_monthly;
--   tax_total_yuan: the month's tax period summed over ads_tax_monthly.
-- A month is listed when trade, settlements or tax filings measure it; what no feed measured
-- that month is null, not zero (the tax history starts a year before the payments).
WITH trade AS (
  SELECT
    CAST(date_trunc('MONTH', biz_date) AS DATE)                        AS month,
    CAST(SUM(net_fen) AS BIGINT)                                       AS trade_net_fen,
    COUNT(DISTINCT CASE WHEN success_count > 0 THEN merchant_id END)   AS active_merchants
  FROM dws.dws_trade_merchant_daily
  GROUP BY 1
),
backflow AS (
  SELECT
    month,
    CASE WHEN SUM(settled_net_fen) > 0
      THEN CAST(SUM(settled_local_fen) AS DOUBLE) / CAST(SUM(settled_net_fen) AS DOUBLE)
    END                                                                AS backflow_rate
  FROM ads.ads_fund_backflow_monthly
  GROUP BY month
),
tax AS (
  SELECT
    make_date(CAST(substr(period, 1, 4) AS INT), CAST(substr(period, 5, 2) AS INT), 1) AS month,
    CAST(SUM(total_tax_yuan) AS DECIMAL(18,2))                         AS tax_total_yuan
  FROM ads.ads_tax_monthly
  GROUP BY 1
),
established AS (
  SELECT CAST(date_trunc('MONTH', established_date) AS DATE) AS month, COUNT(DISTINCT uscc) AS n
  FROM dwd.dwd_enterprise
  WHERE is_current AND established_date IS NOT NULL
  GROUP BY 1
),
closed AS (
  SELECT CAST(date_trunc('MONTH', closed_date) AS DATE) AS month, COUNT(DISTINCT uscc) AS n
  FROM dwd.dwd_enterprise
  WHERE closed_date IS NOT NULL
  GROUP BY 1
),
grain AS (
  SELECT month FROM trade
  UNION SELECT month FROM backflow
  UNION SELECT month FROM tax
)
SELECT
  g.month,
  t.trade_net_fen,
  CASE WHEN pm.trade_net_fen > 0
    THEN CAST(t.trade_net_fen AS DOUBLE) / CAST(pm.trade_net_fen AS DOUBLE) - 1
  END                                          AS trade_mom,
  CASE WHEN py.trade_net_fen > 0
    THEN CAST(t.trade_net_fen AS DOUBLE) / CAST(py.trade_net_fen AS DOUBLE) - 1
  END                                          AS trade_yoy,
  t.active_merchants,
  CAST(COALESCE(n.n, 0) AS BIGINT)             AS new_enterprises,
  CAST(COALESCE(c.n, 0) AS BIGINT)             AS closed_enterprises,
  b.backflow_rate,
  x.tax_total_yuan,
  current_timestamp()                          AS _computed_at,
  @input_versions() AS _input_versions
FROM grain g
LEFT JOIN trade t       ON t.month = g.month
LEFT JOIN trade pm      ON pm.month = add_months(g.month, -1)
LEFT JOIN trade py      ON py.month = add_months(g.month, -12)
LEFT JOIN backflow b    ON b.month = g.month
LEFT JOIN tax x         ON x.month = g.month
LEFT JOIN established n ON n.month = g.month
LEFT JOIN closed c      ON c.month = g.month
