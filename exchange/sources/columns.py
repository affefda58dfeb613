"""Raw columns per dataset, in the order docs/architecture.md gives them."""

from __future__ import annotations

RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    "persons": ("id_number", "name", "sex", "birth_date", "ethnicity", "division_code", "address",
                "hukou_number", "hukou_issue_date", "id_card_issue_date", "id_card_valid_until", "id_card_authority",
                "status", "updated_at"),
    "enterprises": ("uscc", "name", "entity_type", "legal_rep_id", "legal_rep_name", "address",
                    "division_code", "registered_capital", "issue_date", "status", "updated_at"),
    "food_licences": ("licence_no", "holder_uscc", "holder_name", "business_scope", "address",
                      "issue_date", "valid_from", "valid_until", "status", "updated_at"),
    "marriages": ("cert_no", "spouse1_id", "spouse1_name", "spouse2_id", "spouse2_name",
                  "registration_date", "office", "status", "updated_at"),
    "properties": ("cert_no", "owner_code", "owner_code_type", "owner_name", "parcel_no", "address",
                   "area_m2", "land_use", "term_start", "term_end", "issue_date", "status", "updated_at"),
    # generic licence records: back-office results pushed to the hub, the construction approval system
    "licence_records": ("licence_type_code", "cert_no", "holder_code", "holder_code_type", "holder_name",
                        "issue_date", "valid_from", "valid_until", "status", "details", "reported_by",
                        "updated_at"),
}
NUMERIC: dict[str, frozenset[str]] = {
    "enterprises": frozenset({"registered_capital"}),
    "properties": frozenset({"area_m2"}),
}
BUSINESS_KEY = {"persons": "id_number", "enterprises": "uscc", "food_licences": "licence_no",
                "marriages": "cert_no", "properties": "cert_no", "licence_records": "cert_no"}
META_COLUMNS = ("_record_key", "_source_id", "_interval")


def select_list(dataset: str, *, source_alias: str = "") -> str:
    """SQL select list casting every raw column to its raw type (text, or DOUBLE for numbers)."""
    p = f"{source_alias}." if source_alias else ""
    out = []
    for c in RAW_COLUMNS[dataset]:
        typ = "DOUBLE" if c in NUMERIC.get(dataset, ()) else "VARCHAR"
        out.append(f'TRY_CAST({p}"{c}" AS {typ}) AS "{c}"' if typ == "DOUBLE" else f'CAST({p}"{c}" AS VARCHAR) AS "{c}"')
    return ", ".join(out)
