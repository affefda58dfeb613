"""Back-office results (办结结果) a department pushes: new or changed certificate records."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DetailValue = str | int | float | bool | None


class ResultRecordIn(BaseModel):
    """One certificate record as the issuing department's back office approved it."""

    model_config = ConfigDict(extra="forbid")

    licence_type: str = Field(min_length=1, max_length=32,
                              description="licence type: registry key (construction_permit) or 21-character code")
    cert_number: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$", description="证照编号")
    holder_code: str = Field(min_length=15, max_length=18, pattern=r"^[0-9A-Za-z]+$",
                             description="持证主体代码: citizen ID number (111) or credit code (001)")
    holder_code_type: Literal["111", "001"]
    holder_name: str = Field(min_length=1, max_length=100, description="持证主体名称")
    issue_date: dt.date = Field(description="颁证日期 YYYY-MM-DD")
    valid_from: dt.date | None = Field(default=None, description="有效期起始 (default: issue_date)")
    valid_until: dt.date | None = Field(default=None, description="有效期截止 (empty: 长期 or until an event)")
    status: Literal["01", "02", "03", "04", "05", "07"] = Field(
        default="01", description="证照状态: 01 有效, 02 暂扣, 03 撤销, 04 注销, 05 失效, 07 吊销")
    details: dict[str, DetailValue] = Field(default_factory=dict, max_length=50,
                                            description="licence-specific fields (照面扩展信息)")


class ResultsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[ResultRecordIn] = Field(min_length=1, max_length=500)


class ResultsReceipt(BaseModel):
    receipt_id: str = Field(description="回执编号")
    records: int
    received_at: str = Field(description="naive ISO timestamp, China Standard Time")
    source_id: str = Field(description="the ingest source that will pull the records (DAG ingest_<id>)")
    licence_types: list[str]
    message: str
