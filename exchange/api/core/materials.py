"""Request dependency for the material library."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from exchange.materials import MaterialLibrary


async def get_materials(request: Request) -> MaterialLibrary:
    return request.app.state.materials


MaterialsDep = Annotated[MaterialLibrary, Depends(get_materials)]
