"""What the client takes from botocore's own description of S3: the service and paginator
models (loaded once), boto3's S3 method names (to refuse an operation by name rather than
answer AttributeError), the :class:`Paginator` run by botocore's page iterator, and boto3's
exception classes without a client to a real endpoint (the local store).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "Paginator",
    "check_params",
    "pageable",
    "s3_operations",
    "standalone_exceptions",
    "validated",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")
#: Parameters this client takes in more forms than botocore's model describes (a memoryview
#: body, a CopySource mapping that boto3 turns into a string before validating): checked by
#: the client itself.
_OWN_CHECKS = frozenset({"Body", "CopySource"})

_MODELS: tuple[Any, Any] | None = None
_OPERATIONS: frozenset[str] | None = None


def _s3_models() -> tuple[Any, Any]:
    """botocore's S3 service model and paginator model (with botocore's extras)."""
    global _MODELS
    if _MODELS is None:
        import botocore.session

        session = botocore.session.get_session()
        _MODELS = (session.get_service_model("s3"), session.get_paginator_model("s3"))
    return _MODELS


def s3_operations() -> frozenset[str]:
    """boto3's S3 method names (``put_object``...)."""
    global _OPERATIONS
    if _OPERATIONS is None:
        from botocore import xform_name

        _OPERATIONS = frozenset(xform_name(n) for n in _s3_models()[0].operation_names)
    return _OPERATIONS


def check_params(operation: str, params: Mapping[str, Any]) -> None:
    """Raises botocore's ``ParamValidationError``, with its message, for the parameters of
    ``operation`` (an S3 operation's name, ``ListObjectsV2``) that boto3 would refuse before
    sending anything: a value of the wrong type, ``None`` given for a parameter (boto3 never
    takes None to mean "not given"), a string too short. Parameters outside S3's model (this
    client's own) are left to the method."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import ParamValidator

    shape = _s3_models()[0].operation_model(operation).input_shape
    given = {
        name: dict(value) if isinstance(value, Mapping) and not isinstance(value, dict) else value
        for name, value in params.items()
        if name in shape.members and name not in _OWN_CHECKS
    }
    for name in _OWN_CHECKS.intersection(shape.required_members, params):
        given[name] = "checked by the client"  # present: its form is the client's to check
    report = ParamValidator().validate(given, shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def validated(operation: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """A client method whose keyword arguments are first checked as boto3 checks them
    (:func:`check_params`)."""

    def wrap(method: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(method)
        def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            check_params(operation, kwargs)
            return method(*args, **kwargs)

        return checked

    return wrap


def pageable(method_name: str) -> bool:
    """Whether boto3's S3 client can paginate this method."""
    from botocore import xform_name

    service, paginators = _s3_models()
    for name in service.operation_names:
        if xform_name(name) == method_name:
            try:
                paginators.get_paginator(name)
            except ValueError:
                return False
            return True
    return False


class Paginator:
    """boto3's paginator for a listing, run by botocore's own page iterator over this client's
    method: ``paginate(**params)`` with ``PaginationConfig`` (``MaxItems``, ``PageSize``,
    ``StartingToken``), ``build_full_result()``, ``search()``, ``resume_token``, all as boto3's
    (MaxItems counts ``Contents``; resume tokens are botocore's)."""

    def __init__(self, method: Callable[..., dict[str, Any]], operation: str) -> None:
        import botocore.paginate

        service, paginators = _s3_models()
        self._paginator = botocore.paginate.Paginator(
            method, paginators.get_paginator(operation), service.operation_model(operation)
        )

    def paginate(self, **params: Any) -> Any:
        """A botocore ``PageIterator``: iterate it for the pages."""
        return self._paginator.paginate(**params)


def standalone_exceptions() -> Any:
    """botocore's S3 exception classes without a client to a real endpoint (the local store)."""
    import boto3

    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    )
    return client.exceptions
