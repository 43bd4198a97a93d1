"""A LocalStack Lambda runtime executor that needs no Docker.

LocalStack's default executor pulls a runtime image and its runtime interface emulator,
which cannot happen on these machines, so every function would go Failed. This one makes a
version's preparation take `LAMBDA3_PREPARE_SECONDS` (default 1.5 s), so State stays
Pending and LastUpdateStatus InProgress for that long as on AWS, and then lets it turn
Active.

Invoke runs the function when `LAMBDA3_SOURCE_ROOT` names a lambda3 checkout: each
execution environment is one `lambda3.embedded.worker.Worker` (the local invoker's warm
child process, on this interpreter) over the code and layers LocalStack unzipped. Without
it, an Invoke answers an error.

Selected with LAMBDA_RUNTIME_EXECUTOR=lambda3 (the entry point's name).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from localstack.services.lambda_.invocation.lambda_models import (
    FunctionVersion,
    InvocationResult,
)
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

NOT_RUNNABLE = ("functions do not run in lambda3's LocalStack tier unless LAMBDA3_SOURCE_ROOT "
                "names a lambda3 checkout")


def prepare_seconds() -> float:
    return float(os.environ.get("LAMBDA3_PREPARE_SECONDS", "1.5"))


def _worker_module():
    """lambda3's worker, from the checkout LAMBDA3_SOURCE_ROOT names; None without one."""
    root = os.environ.get("LAMBDA3_SOURCE_ROOT")
    if not root:
        return None
    if root not in sys.path:
        sys.path.append(root)
    from lambda3.embedded import worker

    return worker


class _NoStream:
    """The invocation log's CloudWatch stream: LocalStack writes the logs itself."""

    def put(self, line: str) -> None:
        pass


class Lambda3Executor(RuntimeExecutor):
    """Prepares versions slowly; runs a function with lambda3's local worker if it can."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.worker = None
        self.tmp_dir: str | None = None

    def start(self, env_vars: dict[str, str]) -> None:
        worker = _worker_module()
        if worker is None:
            raise LambdaRuntimeException(NOT_RUNNABLE)
        config = self.function_version.config
        task = config.code.get_unzipped_code_location()
        layers = [layer.code.get_unzipped_code_location() for layer in config.layers]
        version = (config.runtime or "").removeprefix("python")
        path = [str(task)] + [str(p) for layer in layers for p in (
            layer / f"python/lib/python{version}/site-packages", layer / "python")]
        self.tmp_dir = tempfile.mkdtemp(prefix=f"lambda3-{self.id}-")
        self.worker = worker.Worker(self._environment(env_vars, task), task, path,
                                    Path(self.tmp_dir))

    def _environment(self, env_vars: dict[str, str], task: Path) -> dict[str, str]:
        environment = {key: str(value) for key, value in env_vars.items()}
        environment.update(LAMBDA_TASK_ROOT=str(task), HOME=self.tmp_dir, TMPDIR=self.tmp_dir,
                           PATH=os.environ.get("PATH", "/usr/bin:/bin"), LANG="en_US.UTF-8")
        host, port = environment.get("LOCALSTACK_HOSTNAME"), environment.get("EDGE_PORT")
        if host and port:
            environment["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
        return environment

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None
        if self.tmp_dir:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        """Only for AWS_LAMBDA_RUNTIME_API: the worker talks over pipes, nothing listens."""
        return f"http://127.0.0.1/_lambda3/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        worker = _worker_module()
        if worker is None or self.worker is None:
            raise LambdaRuntimeException(NOT_RUNNABLE)
        config = self.function_version.config
        request_id = payload["invoke-id"]
        request = {"request_id": request_id,
                   "invoked_function_arn": payload["invoked-function-arn"],
                   "deadline_ms": int((time.time() + config.timeout) * 1000)}
        log = worker.InvocationLog(_NoStream(), [])
        outcome = self.worker.invoke(request, payload["payload"].encode(), config.timeout, log)
        return InvocationResult(request_id=request_id, payload=outcome.payload,
                                is_error=outcome.function_error is not None, logs=log.text())

    def get_logs(self) -> str:
        return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        time.sleep(prepare_seconds())
        config = function_version.config
        if config.code:
            config.code.prepare_for_execution()
        for layer in config.layers:
            layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return True


class Lambda3ExecutorPlugin(RuntimeExecutorPlugin):
    name = "lambda3"

    def load(self, *args, **kwargs) -> type[RuntimeExecutor]:
        return Lambda3Executor
