"""How each dataset's passing rows become subjects and certificates (SQL over the batch).

Every mapping reads the view ``batch`` (the quality step's ``passed.parquet``) and
yields rows with the certificate columns of ``warehouse.schema`` except the
hashes, version and interval, which the merge computes.
"""

from __future__ import annotations

from certificates.registry import LicenceType, load_registry
from warehouse.duck import literal


def _date(col: str) -> str:
    return f"TRY_CAST(nullif(trim({col}), '') AS DATE)"


def _ts(col: str) -> str:
    return f"TRY_CAST(nullif(trim({col}), '') AS TIMESTAMP)"


def _cert_select(lt: LicenceType, *, cert_number: str, holder_code: str, holder_code_type: str,
                 holder_name: str, issue_date: str, valid_from: str, valid_until: str, extension: str) -> str:
    return f"""
    SELECT {literal(lt.code)} || ':' || {cert_number} || ':' || {holder_code} AS cert_key,
           {literal(lt.code)} AS licence_type_code, {literal(lt.name)} AS licence_type_name,
           {cert_number} AS cert_number, {holder_code} AS holder_code, {holder_code_type} AS holder_code_type,
           {holder_name} AS holder_name, {literal(lt.issuer.name)} AS issuer_name, {literal(lt.issuer.code)} AS issuer_code,
           {issue_date} AS issue_date, {valid_from} AS valid_from, {valid_until} AS valid_until,
           coalesce(nullif(trim(status), ''), '01') AS status,
           CAST({extension} AS JSON) AS extension,
           coalesce(_flags, [])::VARCHAR[] AS flags,
           _source_id AS source_id, {_ts('updated_at')} AS source_updated_at
    FROM batch"""


def certificate_sql(dataset: str) -> str:
    """SQL yielding certificate rows for a dataset's passing batch."""
    r = load_registry()
    lt = r.licence_type
    if dataset == "persons":
        id_card = _cert_select(
            lt("id_card"), cert_number="id_number", holder_code="id_number", holder_code_type="'111'",
            holder_name="name", issue_date=_date("id_card_issue_date"), valid_from=_date("id_card_issue_date"),
            valid_until=_date("id_card_valid_until"),
            extension="json_object('sex', sex, 'birth_date', birth_date, 'ethnicity', ethnicity, 'address', address, "
                      "'authority', id_card_authority)")
        hukou = _cert_select(
            lt("hukou"), cert_number="hukou_number", holder_code="id_number", holder_code_type="'111'",
            holder_name="name", issue_date=_date("hukou_issue_date"), valid_from=_date("hukou_issue_date"),
            valid_until="NULL::DATE",
            extension="json_object('address', address, 'division_code', division_code)")
        return f"{id_card} UNION ALL {hukou} WHERE nullif(trim(hukou_number), '') IS NOT NULL"
    if dataset == "enterprises":
        return _cert_select(
            lt("business_licence"), cert_number="uscc", holder_code="uscc", holder_code_type="'001'",
            holder_name="name", issue_date=_date("issue_date"), valid_from=_date("issue_date"),
            valid_until="NULL::DATE",
            extension="json_object('entity_type', entity_type, 'legal_rep_id', legal_rep_id, "
                      "'legal_rep_name', legal_rep_name, 'address', address, "
                      "'registered_capital_10k_yuan', registered_capital)")
    if dataset == "food_licences":
        return _cert_select(
            lt("food_licence"), cert_number="licence_no", holder_code="holder_uscc", holder_code_type="'001'",
            holder_name="holder_name", issue_date=_date("issue_date"), valid_from=_date("valid_from"),
            valid_until=_date("valid_until"),
            extension="json_object('business_scope', business_scope, 'address', address)")
    if dataset == "marriages":  # one 结婚证 per spouse, same certificate number
        ext = ("json_object('spouse1_id', spouse1_id, 'spouse1_name', spouse1_name, 'spouse2_id', spouse2_id, "
               "'spouse2_name', spouse2_name, 'office', office)")
        return " UNION ALL ".join(
            _cert_select(lt("marriage"), cert_number="cert_no", holder_code=f"spouse{i}_id",
                         holder_code_type="'111'", holder_name=f"spouse{i}_name",
                         issue_date=_date("registration_date"), valid_from=_date("registration_date"),
                         valid_until="NULL::DATE", extension=ext)
            for i in (1, 2))
    if dataset == "properties":
        return _cert_select(
            lt("property"), cert_number="cert_no", holder_code="owner_code", holder_code_type="owner_code_type",
            holder_name="owner_name", issue_date=_date("issue_date"), valid_from=_date("issue_date"),
            valid_until="NULL::DATE",
            extension="json_object('parcel_no', parcel_no, 'address', address, 'area_m2', area_m2, "
                      "'land_use', land_use, 'term_start', term_start, 'term_end', term_end)")
    if dataset == "licence_records":  # any registered type, one row per record; quality checked the type
        ext = ("json_merge_patch(CAST(coalesce(nullif(trim(details), ''), '{}') AS JSON), "
               "json_object('reported_by', reported_by))")
        return " UNION ALL ".join(
            _cert_select(t, cert_number="trim(cert_no)", holder_code="trim(holder_code)",
                         holder_code_type="trim(holder_code_type)", holder_name="holder_name",
                         issue_date=_date("issue_date"), valid_from=f"coalesce({_date('valid_from')}, "
                         f"{_date('issue_date')})", valid_until=_date("valid_until"), extension=ext)
            + f" WHERE trim(licence_type_code) = {literal(t.code)}"
            for t in r.licence_types.values())
    raise KeyError(f"no certificate mapping for dataset {dataset!r}")


def subject_sql(dataset: str) -> str | None:
    """SQL yielding subject rows, for the registries that define subjects (persons, enterprises)."""
    if dataset == "persons":
        return f"""
        SELECT id_number AS subject_code, '111' AS code_type, name, 'person' AS kind, sex,
               {_date('birth_date')} AS birth_date, address, division_code, NULL::VARCHAR AS legal_rep_code,
               _source_id AS source_id, {_ts('updated_at')} AS updated_at
        FROM batch"""
    if dataset == "enterprises":
        return f"""
        SELECT uscc AS subject_code, '001' AS code_type, name, 'organisation' AS kind, NULL::VARCHAR AS sex,
               NULL::DATE AS birth_date, address, division_code, legal_rep_id AS legal_rep_code,
               _source_id AS source_id, {_ts('updated_at')} AS updated_at
        FROM batch"""
    return None
