-- Cockpit indicator ads_inclusion_candidates (cockpit-indicators.md; 纳统 thresholds of
-- source-feeds.md, per industry class in dwd_dim_industry): per calendar year and enterprise
-- with above_designated_size = N, revenue_proxy_yuan = max(the year's tax sales_revenue_yuan,
-- the year's net payments + platform GMV of the merchants bound to the uscc, fen -> yuan);
-- ratio = proxy ÷ threshold_yuan; stage 达标 (ratio >= 1.0) or 培育 (0.8 <= ratio < 1.0); rows
-- below 0.8 are not listed. "12 months" is the calendar year (the current one to date).
-- The enterprise is taken as it is now (current version): its flag, industry (so threshold and
-- category), name and district. An enterprise no longer active (注销/吊销/迁出) cannot be brought
-- into the city's statistics and is not listed; nor is one whose industry has no revenue threshold.
-- Stage and cut-off compare the decimals (proxy >= threshold, 10 × proxy >= 8 × threshold):
-- exact, where the double ratio could fall a hair under 0.8 or 1.0.
WITH yearly AS (
  SELECT
    CAST(year(month) AS INT)                                                    AS year,
    uscc,
    CAST(COALESCE(SUM(tax_sales_revenue_yuan), 0) AS DECIMAL(18,2))             AS tax_revenue_yuan,
    CAST(
      CAST(COALESCE(SUM(payment_net_fen), 0) + COALESCE(SUM(platform_gmv_fen), 0) AS DECIMAL(18,2))
      * 0.01 AS DECIMAL(18,2)
    )                                                                           AS trade_revenue_yuan
  FROM dws.dws_enterprise_monthly
  GROUP BY 1, 2
),
proxied AS (
  SELECT
    y.year,
    y.uscc,
    e.name,
    e.industry_code,
    e.industry_section,
    i.inclusion_category,
    e.district_code,
    y.tax_revenue_yuan,
    y.trade_revenue_yuan,
    CAST(i.inclusion_threshold_yuan AS DECIMAL(18,2))                           AS threshold_yuan,
    CAST(greatest(y.tax_revenue_yuan, y.trade_revenue_yuan) AS DECIMAL(18,2))  AS revenue_proxy_yuan
  FROM yearly y
  JOIN dwd.dwd_enterprise e
    ON e.uscc = y.uscc AND e.is_current
  JOIN dwd.dwd_dim_industry i
    ON i.industry_code = e.industry_code
  WHERE e.above_designated_size = 'N'
    AND e.is_active
    AND i.inclusion_threshold_yuan > 0
)
SELECT
  year,
  uscc,
  name,
  industry_code,
  industry_section,
  inclusion_category,
  district_code,
  tax_revenue_yuan,
  trade_revenue_yuan,
  threshold_yuan,
  revenue_proxy_yuan,
  CASE WHEN threshold_yuan > 0
    THEN CAST(revenue_proxy_yuan AS DOUBLE) / CAST(threshold_yuan AS DOUBLE)
  END                                                                   AS ratio,
  CASE WHEN revenue_proxy_yuan >= threshold_yuan THEN '达标' ELSE '培育' END AS stage,
  current_timestamp()                                                   AS _computed_at,
  @input_versions() AS _input_versions
FROM proxied
WHERE revenue_proxy_yuan * 10 >= threshold_yuan * 8
