"""Keep personal identifiers out of the service's logs (DESIGN.md: masked in logs)."""

from __future__ import annotations

import logging
import re

from quality.standards import mask_identifier

# 18-character citizen ID numbers and credit codes, as they appear in URL paths.
_IDENTIFIER = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")


def mask_identifiers(text: str) -> str:
    """Replace every 18-character identifier in ``text`` by its masked form."""
    return _IDENTIFIER.sub(lambda m: mask_identifier(m.group(0)), text)


class MaskIdentifiers(logging.Filter):
    """Masks identifiers in a record's message and string arguments (uvicorn's access log puts the path there)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_identifiers(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_identifiers(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(logger_names: tuple[str, ...] = ("uvicorn.access", "uvicorn.error")) -> None:
    """Attach the filter once to the loggers that print request paths."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskIdentifiers) for f in logger.filters):
            logger.addFilter(MaskIdentifiers())
