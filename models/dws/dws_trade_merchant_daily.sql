-- Trade per merchant and day, at the district, sector and channel each amount books to.
-- Refunds were already moved to their original's date, district, sector and channel in DWD.
SELECT
  booked_date                               AS biz_date,
  merchant_id,
  district_code,
  sector,
  booked_channel                            AS channel,
  COUNT_IF(counts_as_txn)                   AS txn_count,
  COUNT_IF(status = 'success')              AS success_count,
  SUM(gross_fen)                            AS gross_fen,
  SUM(refund_fen)                           AS refund_fen,
  SUM(gross_fen) - SUM(refund_fen)          AS net_fen
FROM dwd.dwd_pay_transaction
WHERE booked_date BETWEEN @start_date AND @end_date
GROUP BY booked_date, merchant_id, district_code, sector, booked_channel
