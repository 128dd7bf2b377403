"""Quarantine reason codes in the words a regulator reads (质量报告的隔离原因).

The codes themselves are listed once, as the `values` of `reason_code` in the two quarantine
contracts (ods_quarantine: the record could not be read; dwd_quarantine: it breaks its feed's
contract); tests/test_report.py fails when a code there has no wording here.
"""

from __future__ import annotations

REASONS_ZH: dict[str, str] = {
    # Ingestion (入湖): the delivered record is not a readable row of its feed.
    "header_mismatch": "表头与接口标准不符",
    "malformed_row": "记录格式错误(字段数不符等)",
    "bad_encoding": "字符编码错误",
    "bad_json": "JSON 格式错误",
    "unreadable_file": "文件无法读取",
    # Contract (清洗): a value breaks the feed's standard.
    "missing_value": "必填项缺失",
    "bad_amount": "金额格式错误",
    "bad_number": "数值格式错误",
    "bad_timestamp": "时间格式错误",
    "bad_date": "日期格式错误",
    "bad_period": "所属期格式错误",
    "bad_uscc": "统一社会信用代码校验错误",
    "bad_resident_id": "身份证号校验错误",
    "bad_division_code": "行政区划代码无效",
    "bad_mcc": "商户类别码无效",
    "bad_industry_code": "行业代码无效",
    "bad_value": "取值不在允许范围(代码表)内",
    "bad_format": "格式不符合规范",
    "out_of_range": "数值超出合理范围",
    "unknown_merchant": "商户未登记",
    "unknown_station": "加油站未登记",
    "unknown_original": "退款对应的原交易不存在",
    "missing_refund_of": "退款未注明原交易",
    "refund_exceeds_original": "退款金额超过原交易",
    "net_mismatch": "结算净额与明细不符",
    # Gate (质量门): the DWD→DWS gate moved the row out for a failed check of policy
    # `quarantine` (quality/suites.py GATE_REASONS); the column names the check.
    "gate_not_null": "质量门隔离: 必填项为空",
    "gate_values": "质量门隔离: 取值不在允许范围内",
    "gate_range": "质量门隔离: 数值超出合理范围",
    "gate_pattern": "质量门隔离: 格式不符合规范",
    "gate_code": "质量门隔离: 代码不符合国家标准(统一社会信用代码、身份证号、行政区划或商户类别码)",
}

# Where in the path a row was quarantined: the table's layer.
STAGE_ZH = {"ods": "入湖", "dwd": "清洗"}


def reason_zh(code: str) -> str:
    """The Chinese wording of a reason code; an unknown code is shown as it is."""
    return REASONS_ZH.get(code, code)
