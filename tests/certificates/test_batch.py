"""Batch issuance: Merkle trees (RFC 9162), the template encoder, batch tokens and their verification."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from hypothesis import given, settings, strategies as st

from certificates.batch import sign_batch
from certificates.encoder import PayloadEncoder
from certificates.merkle import MerkleTree, leaf_hash, reference_root, root_from_path
from certificates.model import build_payload
from certificates.signing import canonical_json
from tests.certificates.factories import T0, make_cert_row

AT = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone.utc)
CHECK_AT = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


def _row(i: int, **kw):
    fields = {"cert_number": f"JY133010{i:08d}", "issue_date": dt.date(2026, 3, 1),
              "valid_from": dt.date(2026, 3, 1), "valid_until": dt.date(2031, 2, 28)}
    fields.update(kw)
    return make_cert_row(**fields)


# ----------------------------------------------------------------------------- Merkle
@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70))
def test_tree_root_and_every_proof_match_rfc9162(n):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = MerkleTree(leaves)
    assert tree.root == reference_root(leaves)
    concat = tree.proofs_concat()
    for i in range(n):
        assert b"".join(tree.proof(i)) == concat[i]
        assert root_from_path(leaves[i], i, n, tree.proof(i)) == tree.root
        # the same path does not prove another position (the size is bound by the signed header)
        if n > 1:
            assert root_from_path(leaves[i], (i + 1) % n, n, tree.proof(i)) != tree.root


def test_rfc9162_known_answers():
    # RFC 6962 §2.1: the empty-string leaf hash, and the two-leaf root by hand
    import hashlib

    assert leaf_hash(b"").hex() == hashlib.sha256(b"\x00").hexdigest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert MerkleTree([a, b]).root == hashlib.sha256(b"\x01" + a + b).digest()
    assert MerkleTree([a]).root == a and MerkleTree([a]).proof(0) == []


# ----------------------------------------------------------------------------- encoder
_text = st.text(st.characters(min_codepoint=1, max_codepoint=0xFFFF, blacklist_categories=("Cs",)),
                min_size=1, max_size=12).filter(lambda s: s.strip())


@settings(max_examples=150, deadline=None)
@given(name=_text, number=_text, holder=_text, issuer_name=_text, status=st.sampled_from(["01", "02", "03", "07"]),
       until=st.one_of(st.none(), st.dates(min_value=dt.date(2026, 3, 1), max_value=dt.date(2099, 1, 1))),
       ext=st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=8), st.integers(-10**6, 10**6),
                                                           st.none(), st.booleans()), max_size=4),
       version=st.integers(1, 999))
def test_encoder_bytes_equal_canonical_json_of_build_payload(name, number, holder, issuer_name, status, until,
                                                             ext, version):
    row = _row(1, holder_name=holder, issuer_name=issuer_name, status=status, valid_until=until,
               extension=json.dumps(ext, ensure_ascii=False))
    row["cert_number"] = number
    row["licence_type_name"] = name
    lid, base, data = PayloadEncoder(at=AT).encode(row, version=version)
    expected = build_payload(row, version=version, at=AT)
    assert data == canonical_json(expected)
    assert lid == expected["licence_id"] and base == lid.rsplit(".", 2)[0]


def test_encoder_falls_back_for_unusual_rows_and_reports_bad_ones():
    from certificates import LicenceDataError

    enc = PayloadEncoder(at=AT)
    odd = _row(2, issue_date="2026-03-01", valid_from=None, valid_until="", extension={"a": 1.5})
    assert enc.encode(odd)[2] == canonical_json(build_payload(odd, at=AT))
    prev = enc.encode(_row(2))[0]
    lid, _, data = enc.encode(_row(2), version=2, supersedes=prev)
    assert json.loads(data)["supersedes"] == prev and lid.endswith(lid[-1]) and ".002." in lid
    with pytest.raises(LicenceDataError):
        enc.encode(_row(3, status="99"))
    with pytest.raises(LicenceDataError):
        enc.encode(_row(3, valid_until=dt.date(2020, 1, 1)))


# ----------------------------------------------------------------------------- tokens
@pytest.fixture(scope="module")
def batch(keyring):
    issuer = keyring.issuer("scjg")
    enc = PayloadEncoder(at=AT)
    payloads = [enc.encode(_row(i))[2] for i in range(13)]
    return issuer, sign_batch(payloads, private_key=issuer.private_key, kid=issuer.kid, batch_id="b-test-1")


def test_every_batch_token_verifies(batch, trust):
    from certificates import verify_licence

    _, signed = batch
    for token in signed.tokens:
        result = verify_licence(token, trust, at=CHECK_AT)
        assert result.code == "valid", result
        assert len(token.split(".")) == 3


def test_root_statement_is_a_standard_jws_an_independent_library_verifies(batch, trust):
    from jwcrypto import jwk, jws

    _, signed = batch
    keys = jwk.JWKSet.from_json(json.dumps(trust.jwks()))
    head = json.loads(base64.urlsafe_b64decode(signed.root_jws.split(".")[0] + "=="))
    obj = jws.JWS()
    obj.deserialize(signed.root_jws)
    obj.allowed_algs = ["Ed25519"]
    obj.verify(keys.get_key(head["kid"]))
    statement = json.loads(obj.payload)
    assert statement["root"] == base64.urlsafe_b64encode(signed.root).rstrip(b"=").decode()
    assert statement["header"] == signed.tokens[0].split(".")[0] and statement["size"] == 13


def test_a_batch_token_is_not_mistaken_for_a_jws(batch, trust):
    from jwcrypto import jwk, jws
    from jwcrypto.common import JWException

    _, signed = batch
    keys = jwk.JWKSet.from_json(json.dumps(trust.jwks()))
    obj = jws.JWS()
    obj.deserialize(signed.tokens[0])
    with pytest.raises(JWException):
        obj.verify(keys)


@pytest.mark.parametrize("which", [0, 5, 12])
def test_flipping_any_byte_of_a_batch_token_is_detected(batch, trust, which):
    from certificates import verify_licence

    _, signed = batch
    token = signed.tokens[which]
    step = 1 if which == 5 else 7  # every byte for one token, a sample for the others
    for pos in range(0, len(token), step):
        ch = token[pos]
        for repl in {"A" if ch != "A" else "B", "." if ch != "." else "x"}:
            bad = token[:pos] + repl + token[pos + 1:]
            assert verify_licence(bad, trust, at=CHECK_AT).code != "valid", (pos, repl)


def test_a_proof_from_another_leaf_or_batch_is_tampered(batch, keyring, trust):
    from certificates import verify_licence

    issuer, signed = batch
    h0, p0, _ = signed.tokens[0].split(".")
    _, _, proof1 = signed.tokens[1].split(".")
    assert verify_licence(f"{h0}.{p0}.{proof1}", trust, at=CHECK_AT).code == "tampered"
    other = sign_batch([PayloadEncoder(at=AT).encode(_row(99))[2]], private_key=issuer.private_key,
                       kid=issuer.kid, batch_id="b-test-2")
    _, _, foreign = other.tokens[0].split(".")
    assert verify_licence(f"{h0}.{p0}.{foreign}", trust, at=CHECK_AT).code == "tampered"
    # a payload edited and re-encoded is tampered, as for single tokens
    body = json.loads(base64.urlsafe_b64decode(p0 + "=" * (-len(p0) % 4)))
    body["holder"]["name"] = "张三"
    forged = base64.urlsafe_b64encode(canonical_json(body)).rstrip(b"=").decode()
    assert verify_licence(f"{h0}.{forged}.{signed.tokens[0].split('.')[2]}", trust,
                          at=CHECK_AT).code == "tampered"


def test_a_batch_signed_by_an_unknown_key_is_unknown_issuer(trust):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from certificates import verify_licence
    from certificates.trust import jwk_thumbprint

    key = Ed25519PrivateKey.generate()
    signed = sign_batch([PayloadEncoder(at=AT).encode(_row(1))[2]], private_key=key,
                        kid=jwk_thumbprint(key.public_key()), batch_id="rogue")
    assert verify_licence(signed.tokens[0], trust, at=CHECK_AT).code == "unknown_issuer"


def test_batch_tokens_carry_status_and_validity_like_single_ones(keyring, trust):
    from certificates import verify_licence

    issuer = keyring.issuer("scjg")
    enc = PayloadEncoder(at=AT)
    rows = [_row(1, status="02"), _row(2, status="03"), _row(3, valid_until=dt.date(2026, 11, 1))]
    signed = sign_batch([enc.encode(r)[2] for r in rows], private_key=issuer.private_key, kid=issuer.kid,
                        batch_id="b-status")
    codes = [verify_licence(t, trust, at=CHECK_AT).code for t in signed.tokens]
    assert codes == ["suspended", "revoked", "expired"]
    assert T0 < CHECK_AT


@settings(max_examples=40, deadline=None)
@given(index=st.integers(0, 131_071), list_id=st.text(min_size=1, max_size=30))
def test_encoder_with_a_status_list_entry_equals_build_payload(index, list_id):
    row = _row(4)
    ref = (list_id, index)
    _, _, data = PayloadEncoder(at=AT).encode(row, credential_status=ref)
    assert data == canonical_json(build_payload(row, at=AT, credential_status=ref))


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=300))
def test_batch_proofs_are_index_signature_and_rfc9162_path(n):
    """The numpy-built proof segment of every leaf is 0x02 || index || signature || audit path."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from certificates.batch import leaf_for

    payloads = [b'{"n":%d}' % i for i in range(n)]
    signed = sign_batch(payloads, private_key=Ed25519PrivateKey.generate(), kid="k", batch_id="b")
    header = signed.tokens[0].split(".")[0]
    tree = MerkleTree([leaf_for(header, t.split(".")[1]) for t in signed.tokens])
    assert tree.root == signed.root
    signature = base64.urlsafe_b64decode(signed.root_jws.split(".")[2] + "==")
    for i, token in enumerate(signed.tokens):
        h, p, proof = token.split(".")
        assert h == header and base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) == payloads[i]
        assert "=" not in proof
        assert base64.urlsafe_b64decode(proof + "=" * (-len(proof) % 4)) == \
            b"\x02" + i.to_bytes(4, "big") + signature + b"".join(tree.proof(i))


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=700))
def test_numpy_tree_levels_are_the_merkle_tree_s(n):
    from certificates.batch import tree_levels

    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    levels = tree_levels(b"".join(leaves))
    assert [[row.tobytes() for row in level] for level in levels] == MerkleTree(leaves).levels
    assert levels[-1][0].tobytes() == reference_root(leaves)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32, 64, 512, 4096])
def test_proofs_of_full_trees_gathered_from_shared_parts_are_the_defined_bytes(n):
    """Full trees take the gather path (three path levels are base64-aligned); every proof is
    still BASE64URL(0x02 || index || signature || audit path)."""
    import os

    from certificates.batch import proof_segments

    tree = MerkleTree([leaf_hash(i.to_bytes(4, "big")) for i in range(n)])
    signature = os.urandom(64)
    got = proof_segments(tree, signature).to_pylist()
    for i in sorted({0, 1, n // 3, n // 2, n - 2, n - 1} & set(range(n))):
        want = b"\x02" + i.to_bytes(4, "big") + signature + b"".join(tree.proof(i))
        assert got[i] == base64.urlsafe_b64encode(want).rstrip(b"=").decode()
    assert len(set(got)) == n


# ----------------------------------------------------------------------------- column-wise encoder
_odd_text = st.one_of(_text, st.sampled_from([' 前后空格 ', '引号"', "反斜杠\\", "换行\n", "\u3000全角空格", "x\x85",
                                             "a\u2028", "tab\t", "ok"]))
_row_overrides = st.fixed_dictionaries({}, optional={
    "holder_name": _odd_text, "issuer_name": _odd_text, "licence_type_name": _odd_text, "cert_number": _odd_text,
    "holder_code_type": st.sampled_from(["001", " 001", "0\"1"]),
    "status": st.sampled_from([None, "", "01", "02", "07"]),
    "issue_date": st.sampled_from([dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 8), "2026-03-01"]),
    "valid_from": st.sampled_from([None, dt.date(2026, 3, 1), "2026-03-02", ""]),
    "valid_until": st.sampled_from([None, dt.date(2031, 2, 28), "2031-02-28"]),
    "extension": st.sampled_from([None, "", "{}", '{"b":1,"a":"x"}', '{"f":1.5}', '{"n":{"z":1,"y":[1,2]}}',
                                  '{"\U0001f600":1,"\uff01":2}', {"a": 1}]),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_row_overrides, st.integers(1, 999), st.booleans(),
                          st.one_of(st.none(), st.tuples(st.text(max_size=6), st.integers(0, 131_071)))),
                min_size=1, max_size=25),
       st.booleans())
def test_encode_many_equals_encode_row_by_row(rows, with_refs):
    """The column-wise encoder gives exactly the row encoder's identifiers and bytes, for
    ordinary rows and for every kind of row it hands back to the row path."""
    enc = PayloadEncoder(at=AT)
    built = [_row(i, **kw) for i, (kw, _, _, _) in enumerate(rows)]
    versions = [v for _, v, _, _ in rows]
    supersedes = [None] * len(rows)
    for k, (_, v, renew, _) in enumerate(rows):
        if renew and v > 1:  # a renewal: supersedes version 1 of the same licence
            supersedes[k] = enc.encode(built[k], version=1)[0]
    refs = [r for _, _, _, r in rows] if with_refs else None
    columns = {c: [r[c] for r in built] for c in built[0]}
    got = PayloadEncoder(at=AT).encode_many(columns, versions, supersedes, refs)
    want = [enc.encode(r, version=v, supersedes=s, credential_status=None if refs is None else refs[k])
            for k, (r, v, s) in enumerate(zip(built, versions, supersedes))]
    assert list(zip(*got)) == want


def test_encode_many_reports_a_bad_row_like_encode():
    from certificates import LicenceDataError

    rows = [_row(1), _row(2, status="99"), _row(3)]
    columns = {c: [r[c] for r in rows] for c in rows[0]}
    with pytest.raises(LicenceDataError) as exc:
        PayloadEncoder(at=AT).encode_many(columns, [1, 1, 1], [None] * 3)
    assert "status" in str(exc.value)
    many = PayloadEncoder(at=AT).encode_many({c: v[:1] for c, v in columns.items()}, [1], [None])
    assert many[2][0] == canonical_json(build_payload(rows[0], at=AT))


def test_ordinary_rows_take_the_column_path_and_odd_ones_the_row_path():
    from certificates.columns import encode_arrow
    from certificates.encoder import _arrays_from_lists, utf8_list

    rows = [_row(1, issue_date=dt.date(2026, 3, 1)), _row(2, holder_name=' 前后空格 '),
            _row(3, extension='{"f":1.5}'), _row(4, holder_name="引号\"")]
    columns = {c: [r[c] for r in rows] for c in rows[0]}
    ids, _, payload = encode_arrow(PayloadEncoder(at=AT), *_arrays_from_lists(columns, [1] * 4, [None] * 4, None))
    ids, data = ids.to_pylist(), utf8_list(payload)
    assert [d is not None for d in data] == [True, False, True, False]  # a float extension: rfc8785 inline
    for k in (0, 2):
        assert data[k] == canonical_json(build_payload(rows[k], at=AT)) and ids[k] is not None


def test_the_strip_class_holds_every_character_python_strips():
    import re

    from certificates.columns import _STRIP_CLASS

    spaces = {c for c in range(0x110000) if chr(c).isspace()}
    assert {int(h, 16) for h in re.findall(r"\\x\{([0-9a-f]+)\}", _STRIP_CLASS)} == spaces


def test_encode_many_in_slices_equals_one_pass(monkeypatch):
    """Large inputs go column-wise a slice at a time (Arrow string arrays stay one chunk)."""
    import certificates.encoder as batch_module

    rows = [_row(i, issue_date=dt.date(2026, 3, 1), valid_from=None, valid_until=None) for i in range(23)]
    rows[5]["holder_name"] = " 前后空格 "
    columns = {c: [r[c] for r in rows] for c in rows[0]}
    refs = [("list-1", i) if i % 2 else None for i in range(23)]
    whole = PayloadEncoder(at=AT).encode_many(columns, [1] * 23, [None] * 23, refs)
    monkeypatch.setattr(batch_module, "_COLUMN_SLICE", 4)
    assert PayloadEncoder(at=AT).encode_many(columns, [1] * 23, [None] * 23, refs) == whole
    assert whole[2][5] == PayloadEncoder(at=AT).encode(rows[5], credential_status=refs[5])[2]
