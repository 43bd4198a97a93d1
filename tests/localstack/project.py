"""A repository deployed to LocalStack by the builder's deploy engine, in this process.

`Project.deploy()` builds the repository's main branch and runs `deploy_request` with an
`Aws` whose clients talk to LocalStack; `calls` records every Lambda call that engine
makes; `other` is a second client, for changes made by someone else meanwhile.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from builder.aws import Aws
from builder.contract import BuildRequest
from builder.errors import Lambda3Error
from builder.handler import deploy_request
from builder.timing import Timings
from tests.fixtures_aws import AwsEndpoint
from tests.localstack.calls import Calls

RUNTIME = "python3.12"
POLL_SECONDS = 0.2
APP_V1 = "def handler(event, context):\n    return {'v': 1}\n"
APP_V2 = "def handler(event, context):\n    return {'v': 2}\n"


def build_yaml(role: str, memory: int = 128) -> str:
    return f"""
function:
  runtimes: [{RUNTIME}]
  handler: app.handler
  role: {role}
  memory: {memory}
  files: [app.py]
layers:
  data:
    files: [data]
"""


class EngineClients:
    """One client per service on LocalStack, as the builder's client factory would make."""

    def __init__(self, endpoint: AwsEndpoint) -> None:
        self.endpoint = endpoint
        self.region = endpoint.region
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.endpoint.client(service)
        return self._clients[service]


@dataclass
class Project:
    endpoint: AwsEndpoint
    function: str
    repo: Any
    url: str
    token: str
    role: str
    aws: Aws
    calls: Calls
    sleeps: list[float] = field(default_factory=list)

    @classmethod
    def create(cls, endpoint: AwsEndpoint, function: str, git_server, make_repo,
               token: str) -> Project:
        role = endpoint.lambda_role()
        repo = make_repo({"app.py": APP_V1, "data/words.txt": "alpha\n",
                          "build.yaml": build_yaml(role)})
        repo.commit("first")
        url = git_server.add_repo(f"acme/{function}", repo.path)
        project = cls(endpoint, function, repo, url, token, role, aws=None, calls=None)
        project.aws = Aws(EngineClients(endpoint), sleep=project._sleep)
        project.calls = Calls.on(project.lambda_client)
        return project

    def _sleep(self, seconds: float) -> None:
        """The engine's sleep: recorded, and shortened so that it polls often (LocalStack's
        Pending and InProgress last about a second here)."""
        self.sleeps.append(seconds)
        time.sleep(min(seconds, POLL_SECONDS))

    @property
    def lambda_client(self) -> Any:
        return self.aws.clients("lambda")

    @property
    def other(self) -> Any:
        """A client of someone else: its calls are not the engine's."""
        return self.endpoint.client("lambda")

    def deploy(self, **event: Any) -> dict[str, Any]:
        """The builder's answer as JSON, `{"ok": False, "error": ...}` on a `Lambda3Error`."""
        request = BuildRequest.from_event({
            "action": "build", "repository": self.url, "ref": "main", "token": self.token,
            "function": self.function, "alias": "live", **event})
        try:
            return deploy_request(request, Timings(), aws=self.aws).to_json()
        except Lambda3Error as error:
            return {"ok": False, "error": error.to_dict()}

    def commit_code_and_memory(self, memory: int = 256) -> None:
        """A change that makes every kind of step: configuration, code, version, alias."""
        self.repo.commit("code and memory", files={
            "app.py": APP_V2, "build.yaml": build_yaml(self.role, memory)})

    # -- reading LocalStack, as the other client ---------------------------------------------
    def configuration(self) -> dict[str, Any]:
        return self.other.get_function_configuration(FunctionName=self.function)

    def alias_version(self) -> str:
        return self.other.get_alias(FunctionName=self.function, Name="live")["FunctionVersion"]

    def versions(self) -> list[dict[str, Any]]:
        answer = self.other.list_versions_by_function(FunctionName=self.function)
        return [v for v in answer["Versions"] if v["Version"] != "$LATEST"]

    def layer_versions(self, component: str = "data") -> list[dict[str, Any]]:
        name = f"{self.function}-{component}"
        return self.other.list_layer_versions(LayerName=name)["LayerVersions"]

    def wait_until_updated(self) -> None:
        waiter = self.other.get_waiter("function_updated_v2")
        waiter.wait(FunctionName=self.function, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
