"""Time from a failing blocking check to its alert arriving at a webhook and an SMTP server.

    .venv/bin/python benchmarks/alert_latency.py [--rows 1000000] [--repeat 5]

Both receivers are real servers on 127.0.0.1 (tests/receivers.py). Prints, per run, how long
GX took to validate and how long after the verdict each channel had the alert in hand.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("CITYLAKE_VAR_DIR", tempfile.mkdtemp(prefix="citylake-bench-"))

    import great_expectations as gx

    from citylake.settings import AlertSettings, get_settings
    from citylake.spark import get_spark
    from quality import gate
    from quality.suites import Check
    from tests.receivers import smtp_receiver, webhook_receiver

    spark = get_spark()
    # Every txn_id appears twice: the uniqueness check fails on every row.
    df = spark.range(args.rows).selectExpr("id DIV 2 AS txn_id").cache()
    df.count()
    check = Check("txn_id unique", gx.expectations.ExpectColumnValuesToBeUnique(column="txn_id"))
    verdicts: list[float] = []
    real_validate = gate.validate

    def timed_validate(*a, **k):
        result = real_validate(*a, **k)
        verdicts.append(time.perf_counter())  # the failing check is known from here on
        return result

    smtp_ms, gx_s = [], []
    with (
        webhook_receiver() as (url, posts),
        smtp_receiver() as (port, mails),
        mock.patch.object(gate, "validate", timed_validate),
    ):
        settings = get_settings().model_copy(
            update={
                "alerts": AlertSettings(
                    webhook_url=url,
                    smtp_host="127.0.0.1",
                    smtp_port=port,
                    smtp_recipients=["dq@city.example"],
                )
            }
        )
        for _ in range(args.repeat):
            began = time.perf_counter()
            with contextlib.suppress(gate.GateBlocked):
                gate.enforce(df, [check], gate="dwd→dws", table="bench", settings=settings)
            done = time.perf_counter()
            while len(mails) < len(verdicts) and time.perf_counter() - done < 10:
                time.sleep(0.001)
            arrived = time.perf_counter()
            gx_s.append(verdicts[-1] - began)
            smtp_ms.append((arrived - verdicts[-1]) * 1000)
        assert len(posts) == len(mails) == args.repeat
    print(f"rows validated            {args.rows:,}")
    print(f"GX validation (verdict)   median {statistics.median(gx_s):6.2f} s")
    # Both channels send synchronously before enforce() raises: the e-mail time bounds both.
    print(
        f"verdict -> webhook + e-mail delivered  median {statistics.median(smtp_ms):6.1f} ms  "
        f"max {max(smtp_ms):6.1f} ms"
    )


if __name__ == "__main__":
    main()
