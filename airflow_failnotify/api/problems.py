"""Field-level refusals: a 422 whose ``detail`` lists FastAPI-style items with the registration path.

``{"detail": [{"loc": ["body", "backward", "recipients"], "path": "backward.recipients",
"msg": "...", "type": "value_error"}]}`` - the same paths as :mod:`airflow_failnotify.core.config`
(the forms map the same errors onto their fields).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import HTTPException

from airflow_failnotify.core.config import FieldError

UNPROCESSABLE = 422


def field_items(errors: Iterable[FieldError], *, where: str = "body") -> list[dict[str, object]]:
    return [
        {
            "loc": [where, *[p for p in e.path.split(".") if p]],
            "path": e.path,
            "msg": e.message,
            "type": "value_error",
        }
        for e in errors
    ]


def unprocessable(errors: Iterable[FieldError], *, where: str = "body") -> HTTPException:
    return HTTPException(status_code=UNPROCESSABLE, detail=field_items(errors, where=where))


def not_found(message: str) -> HTTPException:
    return HTTPException(status_code=404, detail=message)
