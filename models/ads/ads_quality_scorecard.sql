-- Cockpit indicator ads_quality_scorecard (cockpit-indicators.md): biz_date × feed × owner
-- department. Definitions in its contract (warehouse_layers/ads/ads_quality_scorecard.yaml):
-- loaded = delivered − quarantined (ingestion + contract); completeness counts rows missing a
-- required value; timeliness counts the periods due that day (every day of a daily feed, the
-- last day of a month for a monthly one, from the feed's first period on) whose first delivery
-- landed by the contract's deadline; checks are the latest outcome of each gate check covering
-- the day on a table derived from the feed. Ratios over nothing are NULL, never 0 or 1.
WITH feed AS (
  SELECT feed, owner_department, period, deadline_seconds
  FROM dwd.dwd_dim_feed
),
delivery AS (
  SELECT
    l.feed,
    l.delivery_id,
    l.business_date,
    l.delivered,
    l.quarantined,
    l.finished_at,
    CASE WHEN f.period = 'month' THEN last_day(l.business_date) ELSE l.business_date END
      AS period_end
  FROM dwd.dwd_feed_delivery AS l
  JOIN feed AS f ON f.feed = l.feed
),
onboarded AS (
  SELECT feed, MIN(period_end) AS first_due
  FROM delivery
  GROUP BY feed
),
calendar AS (
  SELECT CAST(d AS DATE) AS biz_date
  FROM (
    SELECT explode(sequence(CAST(@start_date AS DATE), CAST(@end_date AS DATE), INTERVAL 1 DAY)) AS d
  )
),
due AS (
  SELECT c.biz_date, f.feed, f.deadline_seconds
  FROM calendar AS c
  CROSS JOIN feed AS f
  JOIN onboarded AS o ON o.feed = f.feed
  WHERE c.biz_date >= o.first_due
    AND (f.period = 'day' OR c.biz_date = last_day(c.biz_date))
),
landed AS (
  SELECT feed, period_end, MIN(finished_at) AS first_landed
  FROM delivery
  WHERE period_end BETWEEN @start_date AND @end_date
  GROUP BY feed, period_end
),
timely AS (
  -- The deadline as an instant: 00:00 UTC of the period's last day + the feed's seconds.
  SELECT
    d.biz_date,
    d.feed,
    CAST(
      CASE
        WHEN unix_seconds(l.first_landed)
          <= CAST(unix_date(d.biz_date) AS BIGINT) * 86400 + d.deadline_seconds
        THEN 1 ELSE 0
      END AS DOUBLE
    ) AS timeliness
  FROM due AS d
  LEFT JOIN landed AS l ON l.feed = d.feed AND l.period_end = d.biz_date
),
delivered AS (
  SELECT
    feed,
    business_date AS biz_date,
    SUM(delivered) AS delivered,
    SUM(quarantined) AS unreadable
  FROM delivery
  WHERE business_date BETWEEN @start_date AND @end_date
  GROUP BY feed, business_date
),
headerless AS (
  -- Every row of a committed file whose header lacks a contract column misses that value.
  SELECT feed, business_date AS biz_date, COUNT(*) AS incomplete
  FROM ods.ods_quarantine
  WHERE business_date BETWEEN @start_date AND @end_date
    AND reason_code = 'header_mismatch'
    AND detail LIKE '%contract: missing %'
    AND delivery_id IN (SELECT delivery_id FROM delivery)
  GROUP BY feed, business_date
),
broken_line AS (
  SELECT
    feed,
    business_date,
    delivery_id,
    source_line,
    MAX(CASE WHEN reason_code IN ('missing_value', 'missing_refund_of') THEN 1 ELSE 0 END)
      AS incomplete
  FROM dwd.dwd_quarantine
  WHERE business_date BETWEEN @start_date AND @end_date
  GROUP BY feed, business_date, delivery_id, source_line
),
broken AS (
  SELECT
    feed,
    business_date AS biz_date,
    COUNT(*) AS quarantined,
    SUM(incomplete) AS incomplete
  FROM broken_line
  GROUP BY feed, business_date
),
judged AS (
  SELECT
    c.biz_date,
    f.feed,
    o.success,
    ROW_NUMBER() OVER (
      PARTITION BY c.biz_date, f.feed, o.gate, o.table_name, o.check_name
      ORDER BY o.run_at DESC
    ) AS latest
  FROM dwd.dwd_gate_outcome AS o
  JOIN calendar AS c ON c.biz_date BETWEEN o.date_from AND o.date_to
  JOIN feed AS f ON array_contains(o.feeds, f.feed)
),
checks AS (
  SELECT
    biz_date,
    feed,
    SUM(CASE WHEN success THEN 1 ELSE 0 END) AS passed,
    SUM(CASE WHEN success THEN 0 ELSE 1 END) AS failed
  FROM judged
  WHERE latest = 1
  GROUP BY biz_date, feed
),
grain AS (
  SELECT biz_date, feed FROM due
  UNION
  SELECT biz_date, feed FROM delivered
),
counted AS (
  SELECT
    g.biz_date,
    g.feed,
    f.owner_department,
    COALESCE(d.delivered, 0) AS delivered,
    COALESCE(d.unreadable, 0) + COALESCE(b.quarantined, 0) AS quarantined,
    COALESCE(h.incomplete, 0) + COALESCE(b.incomplete, 0) AS incomplete
  FROM grain AS g
  JOIN feed AS f ON f.feed = g.feed
  LEFT JOIN delivered AS d ON d.feed = g.feed AND d.biz_date = g.biz_date
  LEFT JOIN broken AS b ON b.feed = g.feed AND b.biz_date = g.biz_date
  LEFT JOIN headerless AS h ON h.feed = g.feed AND h.biz_date = g.biz_date
)
SELECT
  c.biz_date,
  c.feed,
  c.owner_department,
  c.delivered,
  c.delivered - c.quarantined                                          AS loaded,
  c.quarantined,
  CASE WHEN c.delivered > 0
    THEN CAST(c.delivered - c.incomplete AS DOUBLE) / CAST(c.delivered AS DOUBLE)
  END                                                                  AS completeness,
  CASE WHEN c.delivered > 0
    THEN CAST(c.delivered - c.quarantined AS DOUBLE) / CAST(c.delivered AS DOUBLE)
  END                                                                  AS validity,
  t.timeliness,
  COALESCE(k.passed, 0)                                                AS checks_passed,
  COALESCE(k.failed, 0)                                                AS checks_failed,
  current_timestamp()                                                  AS _computed_at,
  @input_versions() AS _input_versions
FROM counted AS c
LEFT JOIN timely AS t ON t.feed = c.feed AND t.biz_date = c.biz_date
LEFT JOIN checks AS k ON k.feed = c.feed AND k.biz_date = c.biz_date
