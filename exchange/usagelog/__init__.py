"""The usage log (用证记录): hash-chained records in the service store, sealed per day.

- :mod:`.auditor` encrypts full personal identifiers to the auditors' X25519 key.
- :mod:`.merkle` the Merkle tree over a day's record hashes (RFC 6962 shape).
- :mod:`.seal` seals complete days: Merkle root signed with the hub root key (JWS),
  Parquet export named after the previous seal's digest; failures retried and reported.
- :mod:`.verify` checks exports and seals offline and names the first broken record.
"""
