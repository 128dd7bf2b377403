-- Cockpit indicator ads_fund_backflow_monthly (cockpit-indicators.md): per month and district,
-- settled_net_fen, settled_local_fen (settle_bank_local = Y) and backflow_rate = local ÷ net
-- (资金回流率); null, never an error, when nothing was settled.
-- A settlement books to the district of the merchant's registry version valid on settle_date:
-- the version in force at the end of that day (version dates [valid_from, valid_to) cut to days
-- partition the calendar; a move during the day governs the whole day), as dws_enterprise_monthly
-- binds merchants. A settlement of a merchant the registry does not know has no district and is
-- not placed (the city-wide rate of ads_economy_overview sums this table, so it agrees).
WITH placed AS (
  SELECT
    CAST(date_trunc('MONTH', s.settle_date) AS DATE)  AS month,
    m.district_code,
    s.net_fen,
    s.settle_bank_local
  FROM dwd.dwd_pay_settlement s
  JOIN dwd.dwd_merchant m
    ON m.merchant_id = s.merchant_id
   AND CAST(m.valid_from AS DATE) <= s.settle_date
   AND s.settle_date < CAST(m.valid_to AS DATE)
),
summed AS (
  SELECT
    month,
    district_code,
    CAST(SUM(net_fen) AS BIGINT)                                                  AS settled_net_fen,
    CAST(SUM(CASE WHEN settle_bank_local = 'Y' THEN net_fen ELSE 0 END) AS BIGINT) AS settled_local_fen
  FROM placed
  GROUP BY month, district_code
)
SELECT
  month,
  district_code,
  settled_net_fen,
  settled_local_fen,
  CASE WHEN settled_net_fen > 0
    THEN CAST(settled_local_fen AS DOUBLE) / CAST(settled_net_fen AS DOUBLE)
  END                  AS backflow_rate,
  current_timestamp()  AS _computed_at,
  @input_versions() AS _input_versions
FROM summed
