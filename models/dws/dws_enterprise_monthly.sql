-- Enterprise month (cockpit-indicators.md, ads_inclusion_candidates: "12-month sum of tax
-- sales_revenue_yuan" and "12-month net payment + platform GMV of the merchants bound to that
-- uscc"; source-feeds.md: gov_tax_monthly, gov_social_insurance, pay_transactions,
-- merchant_orders, merchant_registry.uscc).
-- Payments are read from dws_trade_merchant_daily, not dwd_pay_transaction: its rows already
-- carry every refund and reversal on the ORIGINAL's date (a December refund of a November
-- payment lowers November), which transaction rows only do through a self-join on refund_of to
-- find the original's time; and it is one row per merchant, day and channel instead of one per
-- transaction, for a model that reads whole months.
-- A merchant binds to the uscc of its registry version valid on that day: the version in force
-- at the end of the day (version dates [valid_from, valid_to) cut to days partition the
-- calendar, so exactly one version holds for each day; a change during the day governs the whole
-- day). Orders have their own time, so they take the version valid at order_time. Merchants
-- without a uscc (个体 street traders) bind to no enterprise.
-- Built month by month (the contract's month_column): a run reads the whole months its range
-- falls in, as a month's row depends on that month's inputs alone.
WITH payment AS (
  SELECT
    CAST(date_trunc('MONTH', t.biz_date) AS DATE)  AS month,
    m.uscc,
    t.merchant_id,
    SUM(t.net_fen)                                 AS net_fen
  FROM dws.dws_trade_merchant_daily t
  JOIN dwd.dwd_merchant m
    ON m.merchant_id = t.merchant_id
   AND CAST(m.valid_from AS DATE) <= t.biz_date
   AND t.biz_date < CAST(m.valid_to AS DATE)
  WHERE m.uscc IS NOT NULL
    AND t.biz_date BETWEEN CAST(date_trunc('MONTH', @start_date) AS DATE) AND last_day(@end_date)
  GROUP BY 1, 2, 3
),
platform AS (
  SELECT
    CAST(date_trunc('MONTH', o.biz_date) AS DATE)  AS month,
    m.uscc,
    o.merchant_id,
    SUM(o.gmv_fen)                                 AS gmv_fen
  FROM dwd.dwd_merchant_order o
  JOIN dwd.dwd_merchant m
    ON m.merchant_id = o.merchant_id
   AND m.valid_from <= o.order_time
   AND o.order_time < m.valid_to
  WHERE o.status = 'paid' AND m.uscc IS NOT NULL
    AND o.biz_date BETWEEN CAST(date_trunc('MONTH', @start_date) AS DATE) AND last_day(@end_date)
  GROUP BY 1, 2, 3
),
merchants AS (
  SELECT
    COALESCE(p.month, g.month)                     AS month,
    COALESCE(p.uscc, g.uscc)                       AS uscc,
    COALESCE(p.merchant_id, g.merchant_id)         AS merchant_id,
    COALESCE(p.net_fen, 0)                         AS net_fen,
    COALESCE(g.gmv_fen, 0)                         AS gmv_fen
  FROM payment p
  FULL OUTER JOIN platform g
    ON g.month = p.month AND g.uscc = p.uscc AND g.merchant_id = p.merchant_id
),
trade AS (
  SELECT
    month,
    uscc,
    SUM(net_fen)                                   AS payment_net_fen,
    SUM(gmv_fen)                                   AS platform_gmv_fen,
    COUNT(DISTINCT merchant_id)                    AS bound_merchants
  FROM merchants
  GROUP BY month, uscc
),
tax AS (
  SELECT
    make_date(CAST(substr(period, 1, 4) AS INT), CAST(substr(period, 5, 2) AS INT), 1) AS month,
    uscc,
    sales_revenue_yuan,
    total_tax_yuan
  FROM dwd.dwd_tax_monthly
  WHERE period BETWEEN date_format(@start_date, 'yyyyMM') AND date_format(@end_date, 'yyyyMM')
),
insurance AS (
  SELECT
    make_date(CAST(substr(period, 1, 4) AS INT), CAST(substr(period, 5, 2) AS INT), 1) AS month,
    uscc,
    insured_headcount
  FROM dwd.dwd_social_insurance
  WHERE period BETWEEN date_format(@start_date, 'yyyyMM') AND date_format(@end_date, 'yyyyMM')
),
grain AS (
  SELECT month, uscc FROM trade
  UNION SELECT month, uscc FROM tax
  UNION SELECT month, uscc FROM insurance
)
SELECT
  g.month,
  g.uscc,
  CAST(x.sales_revenue_yuan AS DECIMAL(18,2))      AS tax_sales_revenue_yuan,
  CAST(x.total_tax_yuan AS DECIMAL(18,2))          AS total_tax_yuan,
  CAST(i.insured_headcount AS BIGINT)              AS insured_headcount,
  CAST(COALESCE(t.payment_net_fen, 0) AS BIGINT)   AS payment_net_fen,
  CAST(COALESCE(t.platform_gmv_fen, 0) AS BIGINT)  AS platform_gmv_fen,
  CAST(COALESCE(t.bound_merchants, 0) AS BIGINT)   AS bound_merchants
FROM grain g
LEFT JOIN trade t     ON t.month = g.month AND t.uscc = g.uscc
LEFT JOIN tax x       ON x.month = g.month AND x.uscc = g.uscc
LEFT JOIN insurance i ON i.month = g.month AND i.uscc = g.uscc
