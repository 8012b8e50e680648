"""Every AWS API call a Lambda function makes, as IAM sees it (service:Action on a resource ARN), recorded through
botocore's event hooks.

`before-parameter-build` sees the operation and its parameters (presigned URLs too: a presigned GET is an
s3:GetObject made with the signer's role); `after-call` sees the response (GetSecretValue's full ARN, which is what
IAM compares, even when the caller passed a name or a partial ARN). Calls are attributed to the function whose
handler is running in the current context (`acting_as`); calls outside every function (test set-up, the harness
polling, moto's interpreter invoking Lambda) are not recorded.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.handlers import BUILTIN_HANDLERS

from tests.support.deployment import ACCOUNT, Call

# botocore operation → IAM action where the names differ (the rest are `prefix:Operation`).
S3_ACTIONS = {"HeadObject": "GetObject", "HeadBucket": "ListBucket", "ListObjectsV2": "ListBucket",
              "ListObjects": "ListBucket", "DeleteObjects": "DeleteObject"}  # fmt: skip
_KEY = "solver_recorded_call"


class UnmappedCall(Exception):
    """A call this recorder cannot turn into an IAM resource: add a rule rather than guess."""


def _resources(service: str, operation: str, params: dict[str, Any], parsed: dict[str, Any], region: str) -> list[str]:
    if service == "s3":
        bucket = params["Bucket"]
        if operation == "DeleteObjects":
            return [f"arn:aws:s3:::{bucket}/{item['Key']}" for item in params["Delete"]["Objects"]]
        return [f"arn:aws:s3:::{bucket}/{params['Key']}" if "Key" in params else f"arn:aws:s3:::{bucket}"]
    if service == "secretsmanager":
        return [str(parsed.get("ARN") or params["SecretId"])]
    if service == "states":
        arn = params.get("executionArn") or params.get("stateMachineArn")
        if arn:
            return [str(arn)]
    if service == "events" and operation == "PutEvents":
        buses = {entry.get("EventBusName", "default") for entry in params["Entries"]}
        return [
            bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{bus}" for bus in buses
        ]
    if service == "lambda" and "FunctionName" in params:
        name = str(params["FunctionName"])
        return [name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"]
    raise UnmappedCall(f"{service}:{operation} with {sorted(params)}")


class CallRecorder:
    """Records the calls made while installed (a context manager), per function."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.unmapped: list[str] = []
        self._function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)
        self._lock = threading.Lock()
        self._handlers: list[tuple[str, Callable[..., None]]] = [
            ("before-parameter-build", self._before),
            ("after-call", self._after),
        ]

    @contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        token = self._function.set(function)
        try:
            yield
        finally:
            self._function.reset(token)

    def wrap(self, function: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def wrapped(event: Any, context: Any) -> Any:
            with self.acting_as(function):
                return handler(event, context)

        return wrapped

    def __enter__(self) -> CallRecorder:
        BUILTIN_HANDLERS.extend(self._handlers)  # sessions made from now on
        if boto3.DEFAULT_SESSION is not None:  # and the default session's clients, made or to be made
            for event, handler in self._handlers:
                boto3.DEFAULT_SESSION.events.register(event, handler, unique_id=f"solver-{event}")
        return self

    def __exit__(self, *exc: object) -> None:
        for item in self._handlers:
            BUILTIN_HANDLERS.remove(item)
        if boto3.DEFAULT_SESSION is not None:
            for event, handler in self._handlers:
                boto3.DEFAULT_SESSION.events.unregister(event, handler, unique_id=f"solver-{event}")
        self._function = contextvars.ContextVar("function", default=None)  # sessions made meanwhile go quiet

    def of(self, function: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.function == function]

    # -- the hooks -------------------------------------------------------------------------------------------------

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        function = self._function.get()
        if function is None:
            return
        context[_KEY] = (function, dict(params))
        if context.get("is_presign_request"):
            self._record(function, model, params, {}, context)

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if _KEY in context and not context.get("is_presign_request"):
            function, params = context[_KEY]
            self._record(function, model, params, parsed, context)

    def _record(
        self, function: str, model: Any, params: dict[str, Any], parsed: dict[str, Any], context: dict[str, Any]
    ) -> None:
        service = model.service_model.signing_name
        operation = model.name
        action = f"{service}:{S3_ACTIONS.get(operation, operation) if service == 's3' else operation}"
        region = str(context.get("client_region") or "us-east-1")
        try:
            resources = _resources(service, operation, params, parsed, region)
        except (UnmappedCall, KeyError) as exc:
            with self._lock:
                self.unmapped.append(f"{function}: {action} ({exc})")
            return
        with self._lock:
            self.calls.extend(Call(function, action, resource) for resource in resources)
