"""Content-addressed material files plus their records in the service store.

A file is stored once under ``layout.service / "materials" / <sha256[:2]> / <sha256>``
however many times and for however many holders it is submitted; each submission of a
(file, type, holder) is one material record. A record counts for once-only only after a
clerk verified it, and only until its reuse date (default: verification day + the
type's ``reuse_days`` from materials.toml). Upload limits per type: ``max_bytes`` and
``media_types``, and the file's first bytes must match the declared media type.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from exchange.exceptions import ExchangeError
from exchange.onceonly.catalogue import Catalogue, MaterialType
from warehouse.datadir import Layout

CST = dt.timezone(dt.timedelta(hours=8), "CST")
_MAGIC = {"application/pdf": (b"%PDF-",), "image/jpeg": (b"\xff\xd8\xff",),
          "image/png": (b"\x89PNG\r\n\x1a\n",)}


class MaterialError(ExchangeError):
    """A material was refused; ``code`` is stable (``material_too_large``, ``material_media_type`` …)."""

    def __init__(self, code: str, message: str, *, status: int = 422, **detail: Any) -> None:
        self.code, self.status, self.detail = code, status, detail
        super().__init__(message)


class MaterialLibrary:
    def __init__(self, store: Any, layout: Layout, catalogue: Catalogue) -> None:
        self.store = store
        self.root = layout.service / "materials"
        self.catalogue = catalogue

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def material_type(self, key: str) -> MaterialType:
        try:
            return self.catalogue.material_type(key)
        except KeyError:
            raise MaterialError("unknown_material_type",
                                f"材料类型 {key} 不在材料目录中。Unknown material type {key!r}; known: "
                                f"{', '.join(sorted(self.catalogue.material_types))}.") from None

    def check(self, data: bytes, media_type: str, mt: MaterialType) -> None:
        if not data:
            raise MaterialError("material_empty", "上传的材料文件为空。The uploaded file is empty.")
        if len(data) > mt.max_bytes:
            raise MaterialError("material_too_large",
                                f"材料文件 {len(data):,} 字节，超过「{mt.name}」的上限 {mt.max_bytes:,} 字节。"
                                f"The file is {len(data):,} bytes; {mt.key} allows at most {mt.max_bytes:,}.",
                                status=413, size=len(data), max_bytes=mt.max_bytes)
        if media_type not in mt.media_types:
            raise MaterialError("material_media_type",
                                f"「{mt.name}」只接受 {', '.join(mt.media_types)}，收到 {media_type}。"
                                f"Media type {media_type} is not accepted for {mt.key}.",
                                status=415, media_type=media_type, accepted=list(mt.media_types))
        magic = _MAGIC.get(media_type)
        if magic and not data.startswith(magic):
            raise MaterialError("material_content_mismatch",
                                f"文件内容不是声明的 {media_type}。The file's content does not match its "
                                f"declared media type {media_type}.", status=415, media_type=media_type)

    def submit(self, data: bytes, *, media_type: str, material_type: str, holder_code: str,
               submitted_by: str, at: dt.datetime, filename: str | None = None,
               case_number: str | None = None) -> tuple[dict[str, Any], bool]:
        """Store a submitted material; returns (record, whether the file was new to the library)."""
        mt = self.material_type(material_type)
        self.check(data, media_type, mt)
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_of(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{digest}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return self.store.add_material(digest=digest, size=len(data), media_type=media_type,
                                       material_id=uuid.uuid4().hex, material_type=material_type,
                                       holder_code=holder_code, filename=filename, case_number=case_number,
                                       submitted_by=submitted_by, at=at)

    def verify(self, material_id: str, *, verified_by: str, at: dt.datetime,
               reuse_until: dt.date | None = None) -> dict[str, Any]:
        """Mark a material verified by a clerk, reusable until ``reuse_until`` (default: the type's period)."""
        rec = self.store.material(material_id)
        if rec is None:
            raise MaterialError("material_not_found", f"没有编号为 {material_id} 的材料。No material {material_id!r}.",
                                status=404)
        mt = self.material_type(rec["material_type"])
        day = (at.astimezone(CST) if at.tzinfo else at).date()
        until = reuse_until or day + dt.timedelta(days=mt.reuse_days)
        if until < day:
            raise MaterialError("invalid_reuse_until", f"复用期限 {until} 早于核验日 {day}。reuse_until is in the past.")
        return self.store.verify_material(material_id, verified_by=verified_by, reuse_until=until, at=at)

    def materials_of(self, holder_code: str) -> list[dict[str, Any]]:
        return self.store.materials_of(holder_code)
