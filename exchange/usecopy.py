"""Use-copies (加注件) moved to :mod:`certificates.usecopy`; this module re-exports them.

Verify a use-copy like a licence, with :func:`certificates.verify_licence` (the hub
service key is in the published trust bundle and JWKS).
"""

from __future__ import annotations

from certificates.usecopy import USE_COPY_TYPE, make_use_copy

__all__ = ["USE_COPY_TYPE", "make_use_copy"]
