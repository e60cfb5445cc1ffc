"""What the client takes from botocore's own description of S3: the service and paginator
models (loaded once), boto3's S3 method names (to refuse an operation by name rather than
answer AttributeError), the :class:`Paginator` run by botocore's page iterator, and boto3's
exception classes without a client to a real endpoint (the local store).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Paginator", "pageable", "s3_operations", "standalone_exceptions"]

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
