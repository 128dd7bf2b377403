"""Alerts reach real local receivers: a webhook (HTTP) and an SMTP server on loopback."""

from __future__ import annotations

import time

import pytest

from citylake.settings import AlertSettings, Settings
from quality.alerts import Alert, notify
from tests.receivers import smtp_receiver, webhook_receiver

ALERT = Alert(
    title="【数据质量告警】ods_pay_transactions 未通过质量门 ods→dwd",
    body="详情",
    gate="ods→dwd",
    table="ods_pay_transactions",
    severity="block",
    at="2024-11-05T00:00:00+00:00",
)


def test_webhook_and_smtp_both_receive_the_alert() -> None:
    with webhook_receiver() as (url, posts), smtp_receiver() as (port, mails):
        settings = Settings(
            alerts={
                "webhook_url": url,
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_recipients": ["dq@city.example"],
            }
        )
        assert notify(ALERT, settings) == {"webhook": "sent", "smtp": "sent"}
        deadline = time.monotonic() + 5
        while not mails and time.monotonic() < deadline:
            time.sleep(0.05)
    assert posts == [ALERT.__dict__]
    (mail,) = mails
    assert mail["Subject"] == ALERT.title and mail["To"] == "dq@city.example"
    assert mail.get_content().strip() == "详情"


def test_a_dead_channel_is_reported_not_raised() -> None:
    with webhook_receiver() as (url, _):
        pass  # the server is gone: nothing listens on that port any more
    settings = Settings(alerts={"webhook_url": url, "timeout_seconds": 1})
    outcome = notify(ALERT, settings)
    assert outcome["webhook"].startswith("failed:")


def test_no_channel_configured_sends_nothing() -> None:
    assert notify(ALERT, Settings()) == {}


@pytest.mark.spark
def test_a_blocked_gate_alerts_with_what_failed(spark, lake: Settings) -> None:
    import great_expectations as gx

    from quality.gate import GateBlocked, enforce
    from quality.suites import Check

    df = spark.createDataFrame([(1,), (1,)], "txn_id int")
    check = Check("txn_id unique", gx.expectations.ExpectColumnValuesToBeUnique(column="txn_id"))
    with webhook_receiver() as (url, posts):
        settings = lake.model_copy(update={"alerts": AlertSettings(webhook_url=url)})
        with pytest.raises(GateBlocked) as blocked:
            enforce(df, [check], gate="dwd→dws", table="dwd_pay_transaction", settings=settings)
    assert blocked.value.alerts == {"webhook": "sent"}
    (alert,) = posts
    assert alert["table"] == "dwd_pay_transaction" and alert["gate"] == "dwd→dws"
    assert "txn_id unique" in alert["body"] and "质量门" in alert["title"]
