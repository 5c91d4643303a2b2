"""Every error the gateway raises, in one tree.

Each class carries what the HTTP layer and the routing manager need to know about it
as class attributes, so nobody branches on the class::

    GatewayError                      status  type                    retryable
    ├── ClientError                   400     invalid_request_error   no
    │   ├── InvalidRequest            400     invalid_request_error
    │   ├── AuthenticationFailed      401     authentication_error
    │   ├── PermissionDenied          403     permission_error
    │   ├── NotFound                  404     not_found_error
    │   │   └── ModelNotFound         404     not_found_error
    │   ├── RequestTimeout            408     invalid_request_error        body too slow
    │   ├── PayloadTooLarge           413     invalid_request_error
    │   └── RateLimited               429     rate_limit_error
    ├── UpstreamError                 502     upstream_error          yes
    │   ├── UpstreamUnavailable       502     upstream_error          yes  refused/DNS/TLS
    │   ├── UpstreamTimeout           504     timeout_error           yes
    │   ├── UpstreamRateLimited       429     rate_limit_error        yes
    │   ├── UpstreamServerError       502     upstream_error          yes  (5xx)
    │   ├── UpstreamProtocolError     502     upstream_error          yes  garbage body/SSE
    │   └── UpstreamRejected          4xx     invalid_request_error   no   bad request
    ├── NoRouteAvailable              503     service_unavailable     no
    ├── AllRoutesFailed               (last)  (last attempt's)        no   has attempts
    └── ServiceUnavailable            503     service_unavailable     no

    ConfigError   (not a GatewayError: raised at load time and by the CLI only)

Messages are safe to show to clients: they name the route, never a key or a URL
with credentials in it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass


class GatewayError(Exception):
    """Base of every error that becomes a client-facing response."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = None
    retryable: bool = False
    log_level: int = logging.ERROR
    #: counts as a failure of the route (circuit breaker, health) when raised by an adapter
    route_fault: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after
        if status_code is not None:
            self.status_code = status_code

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class ClientError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"
    log_level = logging.INFO


class InvalidRequest(ClientError):
    code = "invalid_request"


class AuthenticationFailed(ClientError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    status_code = 403
    error_type = "permission_error"
    code = "permission_denied"


class NotFound(ClientError):
    status_code = 404
    error_type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class RequestTimeout(ClientError):
    status_code = 408
    code = "request_timeout"


class PayloadTooLarge(ClientError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(ClientError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """The provider failed; the routing manager may try another route."""

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"
    retryable = True
    route_fault = True
    log_level = logging.WARNING


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    error_type = "timeout_error"
    code = "upstream_timeout"


class UpstreamRateLimited(UpstreamError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "upstream_rate_limited"


class UpstreamServerError(UpstreamError):
    code = "upstream_server_error"


class UpstreamProtocolError(UpstreamError):
    code = "upstream_protocol_error"


class UpstreamRejected(UpstreamError):
    """The upstream refused the request itself (4xx): another route would refuse it too."""

    error_type = "invalid_request_error"
    code = "upstream_rejected"
    retryable = False
    route_fault = False
    log_level = logging.INFO


class NoRouteAvailable(GatewayError):
    status_code = 503
    error_type = "service_unavailable"
    code = "no_route_available"
    log_level = logging.WARNING


class ServiceUnavailable(GatewayError):
    status_code = 503
    error_type = "service_unavailable"
    code = "service_unavailable"
    log_level = logging.WARNING


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    route: str
    error: GatewayError


class AllRoutesFailed(GatewayError):
    """Every candidate route failed with a retryable error; the last one sets the status
    and type (an upstream 429 stays a 429 with its Retry-After)."""

    error_type = "upstream_error"
    code = "all_routes_failed"
    log_level = logging.WARNING

    def __init__(self, attempts: Sequence[FailedAttempt]) -> None:
        last = attempts[-1].error
        summary = "; ".join(f"{a.route}: {a.error.message}" for a in attempts)
        super().__init__(
            f"All {len(attempts)} route(s) failed: {summary}",
            retry_after=last.retry_after,
            status_code=last.status_code,
        )
        self.attempts = tuple(attempts)
        self.error_type = last.error_type


class ConfigError(Exception):
    """The configuration is invalid; the message names the file, the field and the problem."""
