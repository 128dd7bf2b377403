-- Cockpit indicator ads_trade_daily (cockpit-indicators.md): biz_date × district × sector × channel.
-- active_merchants counts merchants with at least one transaction still successful.
SELECT
  biz_date,
  district_code,
  sector,
  channel,
  SUM(txn_count)                                               AS txn_count,
  SUM(gross_fen)                                               AS gross_fen,
  SUM(refund_fen)                                              AS refund_fen,
  SUM(net_fen)                                                 AS net_fen,
  COUNT(DISTINCT CASE WHEN success_count > 0 THEN merchant_id END) AS active_merchants,
  current_timestamp()                                          AS _computed_at,
  @input_versions() AS _input_versions
FROM dws.dws_trade_merchant_daily
WHERE biz_date BETWEEN @start_date AND @end_date
GROUP BY biz_date, district_code, sector, channel
