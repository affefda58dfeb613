"""The service-item catalogue (GB/T 39554 material lists), read from ``exchange/catalog/items.toml``.

A material's ``satisfied_by`` is a small AND/OR expression over licence type keys of
``certificates/registry.toml``. The loader checks every field once, so the resolver
and the API can trust what they get.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from certificates.registry import Department, Registry, load_registry
from exchange.onceonly.exceptions import CatalogueError, UnknownItemError

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "catalog" / "items.toml"
MATERIAL_TYPES_PATH = DEFAULT_PATH.with_name("materials.toml")
MATERIAL_PREFIX = "material:"

NECESSITY = ("必要", "非必要", "容缺后补")
FORMS = ("纸质", "电子", "纸质或电子")
ORIGINAL_OR_COPY = ("原件", "复印件", "原件和复印件")
SOURCE_CHANNELS = ("申请人自备", "政府部门核发", "调取电子证照库")
HOLDERS = ("applicant", "agent")
APPLICANT_TYPES = ("person", "organisation", "any")


@dataclass(frozen=True)
class AnyOf:
    """Met when any one member is met (OR)."""

    members: tuple["Expr", ...]


@dataclass(frozen=True)
class AllOf:
    """Met only when every member is met (AND)."""

    members: tuple["Expr", ...]


@dataclass(frozen=True)
class MaterialType:
    """A reusable material type of the material library (materials.toml)."""

    key: str
    name: str
    reuse_days: int
    max_bytes: int
    media_types: tuple[str, ...]


@dataclass(frozen=True)
class MaterialRef:
    """A leaf met by a verified, reusable material of this type (``material:<key>`` in the TOML)."""

    key: str
    name: str


# A leaf is a licence type key (str) or a reusable material type (MaterialRef).
Expr = Union[str, MaterialRef, AnyOf, AllOf]


def expr_keys(expr: Expr) -> list[str]:
    """Licence type keys in an expression, in order of first appearance."""
    if isinstance(expr, str):
        return [expr]
    if isinstance(expr, MaterialRef):
        return []
    out: list[str] = []
    for m in expr.members:
        out.extend(k for k in expr_keys(m) if k not in out)
    return out


def expr_material_keys(expr: Expr) -> list[str]:
    """Material type keys in an expression, in order of first appearance."""
    if isinstance(expr, MaterialRef):
        return [expr.key]
    if isinstance(expr, str):
        return []
    out: list[str] = []
    for m in expr.members:
        out.extend(k for k in expr_material_keys(m) if k not in out)
    return out


def expr_text(expr: Expr, registry: Registry) -> str:
    """Chinese rendering: ``居民身份证 或 居民户口簿``; nested groups in parentheses."""
    if isinstance(expr, str):
        return registry.licence_type(expr).name
    if isinstance(expr, MaterialRef):
        return f"{expr.name}（材料库）"
    sep = " 或 " if isinstance(expr, AnyOf) else " 且 "
    parts = [expr_text(m, registry) if isinstance(m, (str, MaterialRef)) else f"（{expr_text(m, registry)}）"
             for m in expr.members]
    return sep.join(parts)


def expr_canonical(expr: Expr) -> str:
    """Stable text form used to recognise the same requirement across items."""
    if isinstance(expr, str):
        return expr
    if isinstance(expr, MaterialRef):
        return MATERIAL_PREFIX + expr.key
    tag = "any" if isinstance(expr, AnyOf) else "all"
    return f"{tag}({','.join(expr_canonical(m) for m in expr.members)})"


@dataclass(frozen=True)
class Material:
    """One material requirement of a service item (GB/T 39554 fields + ``satisfied_by``)."""

    key: str
    name: str
    necessity: str
    form: str
    original_or_copy: str
    copies: int
    source_channel: str
    legal_basis: str
    acceptance_standard: str
    satisfied_by: Expr | None
    holder: str = "applicant"
    condition: str | None = None


@dataclass(frozen=True)
class Item:
    """A service item (事项) with its material list."""

    code: str  # 基本编码
    impl_code: str  # 实施编码, starts with the agency's credit code
    name: str
    agency: Department
    applicant_type: str
    description: str
    materials: tuple[Material, ...]


@dataclass(frozen=True)
class Catalogue:
    """All service items, addressable by 基本编码 or 实施编码."""

    items: tuple[Item, ...]
    registry: Registry
    material_types: dict[str, MaterialType] = field(default_factory=dict)

    def material_type(self, key: str) -> MaterialType:
        try:
            return self.material_types[key]
        except KeyError:
            raise KeyError(f"unknown material type {key!r}; known: {sorted(self.material_types)}") from None

    def get(self, code: str) -> Item:
        for it in self.items:
            if code in (it.code, it.impl_code):
                return it
        raise UnknownItemError(code)

    def search(self, q: str | None = None) -> list[Item]:
        """Items whose name, codes, description or material names contain ``q``."""
        if not q:
            return list(self.items)
        needle = q.strip().lower()
        out = []
        for it in self.items:
            hay = [it.name, it.code, it.impl_code, it.description, it.agency.name,
                   *(m.name for m in it.materials)]
            if any(needle in h.lower() for h in hay):
                out.append(it)
        return out


def _parse_expr(raw: object, registry: Registry, path: Path, where: str,
                material_types: dict[str, MaterialType] | None = None) -> Expr:
    if isinstance(raw, str) and raw.startswith(MATERIAL_PREFIX):
        key = raw[len(MATERIAL_PREFIX):]
        mt = (material_types or {}).get(key)
        if mt is None:
            raise CatalogueError(path, where, f"unknown material type {key!r}; "
                                 f"known: {sorted(material_types or {})} (materials.toml)")
        return MaterialRef(key, mt.name)
    if isinstance(raw, str):
        if raw not in registry.licence_types:
            raise CatalogueError(path, where, f"unknown licence type key {raw!r}; "
                                 f"known: {sorted(registry.licence_types)}")
        return raw
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in ("any", "all"):
        tag, members = next(iter(raw.items()))
        if not isinstance(members, list) or not members:
            raise CatalogueError(path, where, f"{tag!r} needs a non-empty list")
        parsed = tuple(_parse_expr(m, registry, path, where, material_types) for m in members)
        return AnyOf(parsed) if tag == "any" else AllOf(parsed)
    raise CatalogueError(path, where, f"satisfied_by must be a licence type key or "
                         f"{{any = [...]}} / {{all = [...]}}, got {raw!r}")


def _choice(raw: dict, field: str, allowed: tuple[str, ...], path: Path, where: str,
            default: str | None = None) -> str:
    value = raw.get(field, default)
    if value not in allowed:
        raise CatalogueError(path, where, f"{field} = {value!r}, must be one of {allowed}")
    return value


def _text(raw: dict, field: str, path: Path, where: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(path, where, f"{field} is required (non-empty text)")
    return value


def _parse_material(raw: dict, registry: Registry, path: Path, where: str,
                    material_types: dict[str, MaterialType] | None = None) -> Material:
    copies = raw.get("copies", 1)
    if not isinstance(copies, int) or copies < 1:
        raise CatalogueError(path, where, f"copies = {copies!r}, must be a positive integer")
    sb = raw.get("satisfied_by")
    return Material(
        key=_text(raw, "key", path, where),
        name=_text(raw, "name", path, where),
        necessity=_choice(raw, "necessity", NECESSITY, path, where),
        form=_choice(raw, "form", FORMS, path, where),
        original_or_copy=_choice(raw, "original_or_copy", ORIGINAL_OR_COPY, path, where),
        copies=copies,
        source_channel=_choice(raw, "source_channel", SOURCE_CHANNELS, path, where),
        legal_basis=_text(raw, "legal_basis", path, where),
        acceptance_standard=_text(raw, "acceptance_standard", path, where),
        satisfied_by=None if sb is None else _parse_expr(sb, registry, path, where, material_types),
        holder=_choice(raw, "holder", HOLDERS, path, where, default="applicant"),
        condition=raw.get("condition"),
    )


def parse_material_types(text: str, path: Path) -> dict[str, MaterialType]:
    """Parse and check materials.toml; raises :class:`CatalogueError` on the first problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(path, "file", f"not valid TOML: {exc}") from exc
    out: dict[str, MaterialType] = {}
    for key, r in raw.get("material_types", {}).items():
        where = f"material_types.{key}"
        reuse, limit, media = r.get("reuse_days"), r.get("max_bytes"), r.get("media_types")
        if not isinstance(reuse, int) or reuse < 1:
            raise CatalogueError(path, where, f"reuse_days = {reuse!r}, must be a positive integer")
        if not isinstance(limit, int) or limit < 1:
            raise CatalogueError(path, where, f"max_bytes = {limit!r}, must be a positive integer")
        if not isinstance(media, list) or not media or not all(isinstance(m, str) and "/" in m for m in media):
            raise CatalogueError(path, where, "media_types must be a non-empty list of media types")
        out[key] = MaterialType(key, _text(r, "name", path, where), reuse, limit, tuple(media))
    return out


def parse_catalogue(text: str, path: Path, registry: Registry | None = None,
                    material_types: dict[str, MaterialType] | None = None) -> Catalogue:
    """Parse and check catalogue TOML text; raises :class:`CatalogueError` on the first problem."""
    registry = registry or load_registry()
    material_types = material_types or {}
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(path, "file", f"not valid TOML: {exc}") from exc
    items: list[Item] = []
    seen: set[str] = set()
    for i, r in enumerate(raw.get("items", [])):
        where = f"items[{i}] ({r.get('name', '?')})"
        code, impl = _text(r, "code", path, where), _text(r, "impl_code", path, where)
        agency_key = _text(r, "agency", path, where)
        if agency_key not in registry.departments:
            raise CatalogueError(path, where, f"unknown agency {agency_key!r}; "
                                 f"known: {sorted(registry.departments)}")
        agency = registry.departments[agency_key]
        if not impl.startswith(agency.code):
            raise CatalogueError(path, where, f"impl_code {impl} must start with the "
                                 f"implementing agency's credit code {agency.code}")
        for c in (code, impl):
            if c in seen:
                raise CatalogueError(path, where, f"duplicate item code {c!r}")
            seen.add(c)
        mats = tuple(_parse_material(m, registry, path, f"{where}.materials[{j}]", material_types)
                     for j, m in enumerate(r.get("materials", [])))
        if not mats:
            raise CatalogueError(path, where, "an item needs at least one material")
        if len({m.key for m in mats}) != len(mats):
            raise CatalogueError(path, where, "material keys must be unique within an item")
        items.append(Item(code=code, impl_code=impl, name=_text(r, "name", path, where),
                          agency=agency,
                          applicant_type=_choice(r, "applicant_type", APPLICANT_TYPES, path,
                                                 where, default="any"),
                          description=r.get("description", ""), materials=mats))
    return Catalogue(items=tuple(items), registry=registry, material_types=material_types)


@functools.lru_cache(maxsize=4)
def load_catalogue(path: Path = DEFAULT_PATH, materials_path: Path = MATERIAL_TYPES_PATH) -> Catalogue:
    """Load (once per path) and check the catalogue and its material types."""
    types = parse_material_types(materials_path.read_text(encoding="utf-8"), materials_path)
    return parse_catalogue(path.read_text(encoding="utf-8"), path, material_types=types)
