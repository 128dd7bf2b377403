"""Payment settlements (pay_settlements): what each merchant is paid out for a day's takings.

One row per merchant and settle_date for every merchant with at least one payment that day:
`gross_fen` is the sum of the day's payments as the payment system booked them (lines dirtied
in the transaction export count with their true merchant and amount), `fee_fen` the channel
fees on each channel's sum, `net_fen = gross_fen − fee_fen`. Refunds and reversals are paid back
through their own flows, not netted here. The account, and so `settle_bank_local` (资金回流),
is the merchant's (city.SettleAccount). The feed has no `updated_at`; a database loader adds
its own.
"""

from __future__ import annotations

from datetime import date

from pipelines.generator.city import SettleAccount
from pipelines.generator.payment import CHANNELS

# Merchant discount rate per channel (e-CNY carries no fee for merchants).
FEE_RATES = {"wechat": 0.006, "alipay": 0.006, "ecny": 0.0, "unionpay": 0.0038, "bankcard": 0.006}
_RATES = tuple(FEE_RATES[c] for c in CHANNELS)


def settlement_rows(
    day: date, takings: dict[str, list[int]], accounts: dict[str, SettleAccount]
) -> list[list[str]]:
    """pay_settlements rows of `day`, in merchant_id order."""
    iso = day.isoformat()
    rows = []
    for merchant_id in sorted(takings):
        by_channel = takings[merchant_id]
        gross = sum(by_channel)
        fee = sum(round(amount * rate) for amount, rate in zip(by_channel, _RATES, strict=True))
        account = accounts[merchant_id]
        rows.append(
            [
                merchant_id,
                iso,
                str(gross),
                str(fee),
                str(gross - fee),
                account.bank_code,
                "Y" if account.local else "N",
            ]
        )
    return rows
