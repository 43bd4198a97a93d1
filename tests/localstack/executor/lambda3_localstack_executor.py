"""A LocalStack Lambda runtime executor that needs no Docker: the control plane only.

LocalStack's default executor pulls a runtime image and its runtime interface emulator,
which cannot happen on these machines, so every function would go Failed. This one makes a
version's preparation take `LAMBDA3_PREPARE_SECONDS` (default 1.5 s), so State stays
Pending and LastUpdateStatus InProgress for that long as on AWS, and then lets it turn
Active. Running a function is not offered: an Invoke answers an error.

Selected with LAMBDA_RUNTIME_EXECUTOR=lambda3 (the entry point's name).
"""
from __future__ import annotations

import os
import time

from localstack.services.lambda_.invocation.lambda_models import FunctionVersion
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

NOT_RUNNABLE = "lambda3's LocalStack tier emulates the control plane only; functions do not run"


def prepare_seconds() -> float:
    return float(os.environ.get("LAMBDA3_PREPARE_SECONDS", "1.5"))


class ControlPlaneExecutor(RuntimeExecutor):
    """Prepares versions slowly and refuses to start an execution environment."""

    def start(self, env_vars: dict[str, str]) -> None:
        raise LambdaRuntimeException(NOT_RUNNABLE)

    def stop(self) -> None:
        pass

    def get_address(self) -> str:
        raise LambdaRuntimeException(NOT_RUNNABLE)

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        raise LambdaRuntimeException(NOT_RUNNABLE)

    def invoke(self, payload: dict[str, str]):
        raise LambdaRuntimeException(NOT_RUNNABLE)

    def get_logs(self) -> str:
        return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        time.sleep(prepare_seconds())

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return True


class Lambda3ExecutorPlugin(RuntimeExecutorPlugin):
    name = "lambda3"

    def load(self, *args, **kwargs) -> type[RuntimeExecutor]:
        return ControlPlaneExecutor
