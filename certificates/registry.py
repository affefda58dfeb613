"""Issuing departments, defining bodies and licence types, read from ``registry.toml``."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

_PATH = Path(__file__).with_name("registry.toml")


@dataclass(frozen=True)
class Department:
    key: str
    name: str
    code: str  # GB 32100 credit code of the issuing department
    short: str


@dataclass(frozen=True)
class LicenceType:
    key: str
    code: str  # 21 chars: definer credit code + 3 digits
    name: str
    definer_name: str
    definer_code: str
    issuer: Department
    validity: str
    holder: str


@dataclass(frozen=True)
class Registry:
    departments: dict[str, Department]
    licence_types: dict[str, LicenceType]

    def licence_type(self, key: str) -> LicenceType:
        try:
            return self.licence_types[key]
        except KeyError:
            raise KeyError(f"unknown licence type {key!r}; known: {sorted(self.licence_types)}") from None

    def by_code(self, code: str) -> LicenceType:
        for lt in self.licence_types.values():
            if lt.code == code:
                return lt
        raise KeyError(f"unknown licence type code {code!r}")


@functools.lru_cache(maxsize=1)
def load_registry(path: Path = _PATH) -> Registry:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    depts = {k: Department(key=k, name=v["name"], code=v["code"], short=v["short"])
             for k, v in raw["departments"].items()}
    definers = raw["definers"]
    types = {}
    for k, v in raw["licence_types"].items():
        d = definers[v["definer"]]
        if not v["code"].startswith(d["code"]):
            raise ValueError(f"licence type {k}: code {v['code']} must start with definer code {d['code']}")
        types[k] = LicenceType(key=k, code=v["code"], name=v["name"], definer_name=d["name"],
                               definer_code=d["code"], issuer=depts[v["issuer"]],
                               validity=v["validity"], holder=v["holder"])
    return Registry(departments=depts, licence_types=types)
