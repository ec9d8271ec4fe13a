"""Save, update and test one integration's registration: what the Configure form and the JSON API share.

Both UIs hand over the documented registration dict (see README, "Configuration as code"): the form
builds it from its fields (:mod:`airflow_failnotify.plugins.forms`), the API receives it as JSON.
Every problem comes back as one :class:`~airflow_failnotify.core.config.ConfigValidationError` whose
errors carry the field's path (``recipients``, ``backward.global.failure_count_threshold``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from airflow_failnotify.core.config import ConfigValidationError, FieldError, parse_registration
from airflow_failnotify.core.model import Registration


class RegistrationStore(Protocol):
    def get_registration(self, integration: str) -> Registration | None: ...

    def save_registration(self, registration: Registration, *, actor: Any = None) -> Any: ...


def validate(integration: str, data: Mapping[str, Any], *, may_edit: Callable[[str], bool]) -> Registration:
    """The registration ``data`` describes for ``integration``; every reason to refuse it at once.

    ``may_edit(dag_id)`` says whether the user may change a DAG: the backward DAG must be one of
    theirs too (the forward one is checked by the caller, before it reads the body).
    """
    errors: list[FieldError] = []
    parsed: Registration | None = None
    try:
        parsed = parse_registration({**data, "integration": integration})
    except ConfigValidationError as err:
        errors.extend(err.errors)
    backward = data.get("backward_integration")
    if isinstance(backward, str) and backward and backward != integration and not may_edit(backward):
        errors.append(
            FieldError(
                "backward_integration", f"you may not change the DAG {backward!r}: choose one you may edit"
            )
        )
    if errors or parsed is None:
        raise ConfigValidationError(errors)
    return parsed


def _unprefixed(error: FieldError, integration: str) -> FieldError:
    prefix = f"{integration}."
    if error.path.startswith(prefix):
        return FieldError(error.path.removeprefix(prefix), error.message)
    return error


def save(store: RegistrationStore, registration: Registration, *, actor: Any = None) -> bool:
    """Save (or update) ``registration``; True when it is new. ConfigValidationError on a DAG conflict.

    The store names each conflict ``<integration>.<key>``; the errors returned drop the integration,
    so they point at the field (``backward_integration``).
    """
    existed = store.get_registration(registration.integration) is not None
    try:
        store.save_registration(registration, actor=actor)  # the audit trail names ``actor``
    except ConfigValidationError as err:
        raise ConfigValidationError([_unprefixed(e, registration.integration) for e in err.errors]) from err
    return not existed
