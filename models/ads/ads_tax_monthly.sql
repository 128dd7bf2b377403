-- Cockpit indicator ads_tax_monthly (cockpit-indicators.md): per tax period (YYYYMM), district and
-- GB/T 4754 section, the enterprises that filed, their sales_revenue_yuan and total_tax_yuan
-- (dwd_tax_monthly holds one filing per uscc and period, a correction superseding).
-- District and section are the enterprise's registry version valid at the end of the period
-- (期末: the last day of the month, and on that day the version in force at its end), not the
-- current one: a later move or change of industry does not re-file months already reported, and
-- the filing of an enterprise that closed during the month still counts where it was.
-- A filing whose uscc the registry does not know has no district: it is not placed.
WITH filing AS (
  SELECT
    period,
    uscc,
    sales_revenue_yuan,
    total_tax_yuan,
    last_day(make_date(CAST(substr(period, 1, 4) AS INT), CAST(substr(period, 5, 2) AS INT), 1))
      AS period_end
  FROM dwd.dwd_tax_monthly
)
SELECT
  f.period,
  e.district_code,
  e.industry_section,
  COUNT(DISTINCT f.uscc)                                AS enterprises,
  CAST(SUM(f.sales_revenue_yuan) AS DECIMAL(18,2))      AS sales_revenue_yuan,
  CAST(SUM(f.total_tax_yuan) AS DECIMAL(18,2))          AS total_tax_yuan,
  current_timestamp()                                   AS _computed_at,
  @input_versions() AS _input_versions
FROM filing f
JOIN dwd.dwd_enterprise e
  ON e.uscc = f.uscc
 AND CAST(e.valid_from AS DATE) <= f.period_end
 AND f.period_end < CAST(e.valid_to AS DATE)
GROUP BY f.period, e.district_code, e.industry_section
