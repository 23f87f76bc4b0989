"""/v1/stages: the installed stages with their parameter JSON schemas."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Depends

from api.deps import require_principal
from api.models import StageInfo

router = APIRouter(prefix="/v1/stages", tags=["stages"], dependencies=[Depends(require_principal)])


@cache
def _describe() -> list[dict]:
    from curator import registry

    return registry.describe()


@router.get("", response_model=list[StageInfo])
def list_stages():
    """Every stage a spec may name (the ``curator.stages`` entry points), with its parameters' schema."""
    return _describe()
