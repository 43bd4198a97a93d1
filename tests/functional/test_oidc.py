"""GitHub OIDC: the local issuer, and the action's exchange against it and the emulator's STS."""
from __future__ import annotations

import base64
import json

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lambda3.action import oidc
from lambda3.embedded.oidc_issuer import OidcIssuer, TokenInvalid, b64url_decode

ROLE_ARN = "arn:aws:iam::123456789012:role/lambda3-deploy"
NOT_AUTHORIZED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"


def _jwk_public_key(jwk: dict) -> rsa.RSAPublicKey:
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def _fetch(issuer: OidcIssuer, audience: str) -> requests.Response:
    env = issuer.runner_env()
    bearer = f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"
    return requests.get(f"{env['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={audience}",
                        headers={"Authorization": bearer}, timeout=10)


def test_issuer_signs_rs256_tokens_verifiable_with_its_published_jwks(oidc_issuer):
    discovery = requests.get(f"{oidc_issuer.url}/.well-known/openid-configuration",
                             timeout=10).json()
    assert discovery["issuer"] == oidc_issuer.url
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    jwks = requests.get(discovery["jwks_uri"], timeout=10).json()

    answer = _fetch(oidc_issuer, "sts.amazonaws.com")
    assert answer.status_code == 200
    jwt = answer.json()["value"]
    head, body, signature = jwt.split(".")
    header = json.loads(b64url_decode(head))
    assert header["alg"] == "RS256"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    # Verified with the published key only, the way STS checks it.
    _jwk_public_key(key).verify(b64url_decode(signature), f"{head}.{body}".encode(),
                                padding.PKCS1v15(), hashes.SHA256())
    claims = json.loads(b64url_decode(body))
    assert claims["iss"] == oidc_issuer.url and claims["aud"] == "sts.amazonaws.com"
    assert claims["sub"] == "repo:octo-org/octo-repo:ref:refs/heads/main"
    assert claims["repository"] == "octo-org/octo-repo" and claims["ref"] == "refs/heads/main"
    assert claims["nbf"] <= claims["iat"] < claims["exp"] and claims["jti"]
    assert oidc_issuer.verify(jwt, audience="sts.amazonaws.com")["jti"] == claims["jti"]


def test_issuer_refuses_requests_without_the_request_token(oidc_issuer):
    url = oidc_issuer.runner_env()["ACTIONS_ID_TOKEN_REQUEST_URL"]
    assert requests.get(url, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.get(url, headers=wrong, timeout=10).status_code == 401
    assert oidc_issuer.issued == []


def test_verify_rejects_tampered_tokens_and_wrong_audience(oidc_issuer):
    jwt = oidc_issuer.issue("sts.amazonaws.com")
    head, body, sig = jwt.split(".")
    claims = json.loads(b64url_decode(body))
    claims["sub"] = "repo:evil/repo:ref:refs/heads/main"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid, match="signature"):
        oidc_issuer.verify(f"{head}.{forged}.{sig}")
    with pytest.raises(TokenInvalid, match="audience"):
        oidc_issuer.verify(jwt, audience="other")


def test_issuer_claims_are_configurable():
    with OidcIssuer(repository="me/app", ref="refs/tags/v1", claims={"environment": "prod"}) as iss:
        claims = iss.verify(iss.issue("aud-1"))
    assert claims["sub"] == "repo:me/app:ref:refs/tags/v1"
    assert claims["environment"] == "prod" and claims["ref_type"] == "tag"


def test_missing_runner_variables_ask_for_id_token_write():
    with pytest.raises(oidc.OidcError) as caught:
        oidc.exchange(oidc.IdTokenRequest.from_environ({}), sts=None, http=None,
                      role_arn=ROLE_ARN, audience="sts.amazonaws.com", session_name="s")
    assert "permissions: id-token: write" in str(caught.value)
    assert caught.value.step == "credentials"


def test_fetch_id_token_reports_a_refused_request_token(oidc_issuer):
    request = oidc.IdTokenRequest(url=oidc_issuer.runner_env()["ACTIONS_ID_TOKEN_REQUEST_URL"],
                                  token="wrong-token")
    with pytest.raises(oidc.OidcError, match="HTTP 401") as caught:
        oidc.fetch_id_token(request, "sts.amazonaws.com", http=None,
                            sleep=lambda s: None)
    assert "wrong-token" not in str(caught.value)


def _sts(aws) -> object:
    """An unsigned STS client against the emulator, as the action makes it."""
    return boto3.Session().client(
        "sts", region_name=aws.region, endpoint_url=aws.endpoint_url,
        config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}),
    )


def _create_role(aws) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/"
                                   "token.actions.githubusercontent.com"},
    }]}
    iam = aws.client("iam")
    try:
        iam.create_role(RoleName="lambda3-deploy", AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass


def test_exchange_against_the_issuer_and_sts_returns_working_credentials(aws, oidc_issuer):
    _create_role(aws)
    creds = oidc.exchange(_id_token_request(oidc_issuer), sts=_sts(aws), http=None,
                          role_arn=ROLE_ARN, audience="sts.amazonaws.com",
                          session_name="lambda3-42")
    assert creds.access_key_id and creds.secret_access_key and creds.session_token
    assert creds.secret_access_key not in repr(creds)
    assert len(oidc_issuer.issued) == 1
    assert oidc_issuer.verify(oidc_issuer.issued[0])["aud"] == "sts.amazonaws.com"
    session = boto3.Session(region_name=aws.region, **creds.as_session_kwargs())
    identity = session.client("sts", endpoint_url=aws.endpoint_url).get_caller_identity()
    assert identity["Account"] == "123456789012"


def _answer_with_error(code: str, message: str, calls: list):
    class Http:
        status_code = 403
        headers: dict = {}

    def handler(**kwargs):
        calls.append(kwargs["params"])
        return Http(), {"Error": {"Code": code, "Message": message, "Type": "Sender"},
                        "ResponseMetadata": {"HTTPStatusCode": 403}}

    return handler


def test_access_denied_shows_the_token_claims_next_to_the_trust_policy(aws, oidc_issuer):
    sts = _sts(aws)
    calls: list = []
    sts.meta.events.register("before-call.sts.AssumeRoleWithWebIdentity",
                             _answer_with_error("AccessDenied", NOT_AUTHORIZED, calls))
    with pytest.raises(oidc.OidcError) as caught:
        oidc.exchange(_id_token_request(oidc_issuer), sts=sts, http=None,
                      role_arn=ROLE_ARN, audience="sts.amazonaws.com", session_name="lambda3-1",
                      sleep=lambda s: None)
    text = str(caught.value)
    assert NOT_AUTHORIZED in text and ROLE_ARN in text
    assert "sub='repo:octo-org/octo-repo:ref:refs/heads/main'" in text
    assert "aud='sts.amazonaws.com'" in text
    assert "token.actions.githubusercontent.com:aud" in text
    assert "token.actions.githubusercontent.com:sub" in text
    assert oidc_issuer.issued[0] not in text  # the token itself is never shown
    assert len(calls) == 1  # access denied is not retried


def test_throttling_and_idp_errors_are_retried_with_the_injected_sleep(aws, oidc_issuer):
    _create_role(aws)
    sts = _sts(aws)
    calls: list = []
    errors = iter([_answer_with_error("IDPCommunicationError", "try later", calls),
                   _answer_with_error("Throttling", "Rate exceeded", calls)])

    def flaky(**kwargs):
        handler = next(errors, None)
        return handler(**kwargs) if handler else None

    sts.meta.events.register("before-call.sts.AssumeRoleWithWebIdentity", flaky)
    slept: list[float] = []
    creds = oidc.exchange(_id_token_request(oidc_issuer), sts=sts, http=None,
                          role_arn=ROLE_ARN, audience="sts.amazonaws.com", session_name="lambda3-1",
                          sleep=slept.append)
    assert creds.access_key_id
    assert len(calls) == 2 and len(slept) == 2


# The action as a whole: main(environ) with OIDC against the issuer, and a stand-in builder
# in the emulator that answers with a fixed lambda3 result.
STAND_IN_BUILDER = '''
import json

def handler(event, context):
    print("lambda3 request " + event["log_marker"])
    print("::set-output name=version::evil")  # must not act as a workflow command
    print("request", event["action"], json.dumps(event["components"]), event["publish"])
    if event["function"] == "broken":
        return {"ok": False, "error": {"step": "spec", "type": "SpecError",
                "message": "build.yaml:4: unknown key 'runtim'", "file": "build.yaml",
                "line": 4, "key": "runtim"}}
    return {"ok": True, "commit": "d" * 40, "version": "5", "alias": event["alias"],
            "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:" + event["function"],
            "code_sha256": "c2hh", "plan": [], "timings": {"fetch": 1.0, "total": 2.0},
            "layers": [{"name": "deps", "arn": "arn:aws:lambda:us-east-1:123456789012:layer:deps:2",
                        "version": 2, "changed": True, "size": 100}],
            "components": [{"name": event["function"], "kind": "function", "code_sha256": "c2hh",
                            "size": 10, "unzipped_size": 20, "files": 1, "changed": True}]}
'''
CANARY_TOKEN = "ghs_actioncanary0123456789"


def _read_outputs(path) -> dict[str, str]:
    outputs, lines = {}, iter(path.read_text().splitlines())
    for line in lines:
        name, delimiter = line.split("<<", 1)
        value = []
        for item in lines:
            if item == delimiter:
                break
            value.append(item)
        outputs[name] = "\n".join(value)
    return outputs


def _action_environ(aws, oidc_issuer, tmp_path, **inputs) -> dict[str, str]:
    return {
        **oidc_issuer.runner_env(),
        "GITHUB_REPOSITORY": "octo-org/hello", "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_SHA": "e" * 40, "GITHUB_RUN_ID": "77",
        "GITHUB_OUTPUT": str(tmp_path / "output"), "GITHUB_STEP_SUMMARY": str(tmp_path / "sum"),
        "LAMBDA3_ENDPOINT_URL": aws.endpoint_url, "LAMBDA3_AWS_REGION": aws.region,
        "LAMBDA3_ROLE_TO_ASSUME": ROLE_ARN, "LAMBDA3_GITHUB_TOKEN": CANARY_TOKEN,
        "LAMBDA3_BUILDER_FUNCTION": "lambda3-builder", "LAMBDA3_PUBLISH": "true",
        "LAMBDA3_DRY_RUN": "false", **inputs,
    }


@pytest.fixture
def stand_in_builder(aws):
    _create_role(aws)
    aws.create_function("lambda3-builder", {"app.py": STAND_IN_BUILDER})


def test_the_action_deploys_through_the_builder(aws, oidc_issuer, stand_in_builder, tmp_path,
                                                capsys):
    from lambda3.action.run import main

    code = main(_action_environ(aws, oidc_issuer, tmp_path, LAMBDA3_ALIAS="live",
                                LAMBDA3_COMPONENTS="hello,\nworker"))
    out = capsys.readouterr().out
    assert code == 0, out
    outputs = _read_outputs(tmp_path / "output")
    assert outputs["version"] == "5" and outputs["alias"] == "live"
    assert outputs["commit"] == "d" * 40 and outputs["code-sha256"] == "c2hh"
    assert outputs["function-arn"].endswith(":function:hello")
    layer = "arn:aws:lambda:us-east-1:123456789012:layer:deps:2"
    assert json.loads(outputs["layer-arns"]) == [layer]
    assert json.loads(outputs["changed-layers"]) == ["deps"]
    assert outputs["aws-account-id"] == "123456789012"
    lines = out.splitlines()
    assert lines[0] == f"::add-mask::{CANARY_TOKEN}"
    assert CANARY_TOKEN not in "\n".join(lines[1:])
    masks = [line for line in lines if line.startswith("::add-mask::")]
    assert len(masks) == 6  # token, JWT, 3 credentials, the account id
    assert masks[-1] == "::add-mask::123456789012"
    assert lines.index(masks[-1]) < lines.index(f"lambda3: assumed {ROLE_ARN} as lambda3-77")
    start = lines.index("::group::builder log")
    token = lines[start + 1].removeprefix("::stop-commands::")
    assert lines[start + 1].startswith("::stop-commands::") and len(token) == 32
    # the builder's line is inside the stopped window, and made inert besides
    assert lines.index("%3A:set-output name=version::evil") < lines.index(f"::{token}::")
    assert lines[lines.index(f"::{token}::") + 1] == "::endgroup::"
    summary = (tmp_path / "sum").read_text()
    assert "### lambda3 deployed `hello`" in summary and "| hello | function |" in summary
    assert 'request build ["hello", "worker"] True' in lines
    claims = oidc_issuer.verify(oidc_issuer.issued[0], audience="sts.amazonaws.com")
    assert claims["sub"] == "repo:octo-org/octo-repo:ref:refs/heads/main"


def test_the_action_reports_a_spec_error_on_the_build_file_line(aws, oidc_issuer,
                                                                stand_in_builder, tmp_path,
                                                                capsys):
    from lambda3.action.run import main

    code = main(_action_environ(aws, oidc_issuer, tmp_path, LAMBDA3_FUNCTION_NAME="broken"))
    out = capsys.readouterr().out
    assert code == 1
    assert "::error title=lambda3 spec,file=build.yaml,line=4::build.yaml:4: unknown key " \
           "'runtim'" in out
    assert "at step `spec`" in (tmp_path / "sum").read_text()
    assert _read_outputs(tmp_path / "output") == {"aws-account-id": "123456789012"}


def test_the_action_without_id_token_permission_says_so(aws, tmp_path, capsys):
    from lambda3.action.run import main

    environ = {"GITHUB_REPOSITORY": "octo-org/hello", "GITHUB_SHA": "e" * 40,
               "LAMBDA3_AWS_REGION": aws.region, "LAMBDA3_ROLE_TO_ASSUME": ROLE_ARN,
               "LAMBDA3_ENDPOINT_URL": aws.endpoint_url,
               "GITHUB_STEP_SUMMARY": str(tmp_path / "sum")}
    assert main(environ) == 1
    out = capsys.readouterr().out
    assert "::error title=lambda3 credentials::" in out and "id-token: write" in out
    assert "id-token: write" in (tmp_path / "sum").read_text()


def test_the_action_plans_with_ambient_credentials(aws, stand_in_builder, tmp_path, capsys):
    from lambda3.action.run import main

    environ = {"GITHUB_REPOSITORY": "octo-org/hello", "GITHUB_SHA": "e" * 40,
               "GITHUB_OUTPUT": str(tmp_path / "output"),
               "LAMBDA3_AWS_REGION": aws.region, "LAMBDA3_ENDPOINT_URL": aws.endpoint_url,
               "LAMBDA3_DRY_RUN": "true", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing"}
    code = main(environ)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "request plan [] True" in out.splitlines() and "lambda3: planned" in out
    assert _read_outputs(tmp_path / "output")["commit"] == "d" * 40


def test_the_entrypoint_runs_from_anywhere(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    entrypoint = Path(__file__).resolve().parents[2] / "entrypoint.py"
    environ = {"PATH": "/usr/bin:/bin", "GITHUB_REPOSITORY": "octo-org/hello",
               "GITHUB_SHA": "e" * 40}
    done = subprocess.run([sys.executable, "-I", str(entrypoint)], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("::error title=lambda3 settings::the input aws-region is "
                                  "required"), done.stdout + done.stderr


def test_the_region_falls_back_to_aws_region(aws, stand_in_builder, tmp_path, capsys):
    from lambda3.action.run import main

    environ = {"GITHUB_REPOSITORY": "octo-org/hello", "GITHUB_SHA": "e" * 40,
               "GITHUB_OUTPUT": str(tmp_path / "output"), "AWS_REGION": aws.region,
               "LAMBDA3_ENDPOINT_URL": aws.endpoint_url, "LAMBDA3_DRY_RUN": "true",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "LAMBDA3_MASK_AWS_ACCOUNT_ID": "false"}
    assert main(environ) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "::add-mask::" not in out  # no token given, and the account id left unmasked
    assert _read_outputs(tmp_path / "output")["aws-account-id"] == "123456789012"


def test_allowed_account_ids_refuse_other_accounts_before_invoking(aws, stand_in_builder,
                                                                   oidc_issuer, tmp_path,
                                                                   capsys):
    from lambda3.action.run import main

    environ = _action_environ(aws, oidc_issuer, tmp_path,
                              LAMBDA3_ALLOWED_ACCOUNT_IDS="111111111111, 222222222222")
    assert main(environ) == 1
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert errors == ["::error title=lambda3 credentials::the credentials are for account "
                      "123456789012, which allowed-account-ids (111111111111, 222222222222) "
                      "does not list; nothing was invoked"]
    assert "::group::builder log" not in out and "lambda3: building" not in out
    assert not (tmp_path / "output").exists()
    environ["LAMBDA3_ALLOWED_ACCOUNT_IDS"] = "111111111111,123456789012"
    assert main(environ) == 0


def test_role_external_id_assumes_the_role_with_the_ambient_credentials(aws, stand_in_builder,
                                                                        tmp_path, capsys):
    from lambda3.action.run import main

    calls: list = []

    def record(params, **kwargs):
        calls.append(params)

    environ = {"GITHUB_REPOSITORY": "octo-org/hello", "GITHUB_SHA": "e" * 40,
               "GITHUB_OUTPUT": str(tmp_path / "output"), "LAMBDA3_AWS_REGION": aws.region,
               "LAMBDA3_ENDPOINT_URL": aws.endpoint_url, "LAMBDA3_ROLE_TO_ASSUME": ROLE_ARN,
               "LAMBDA3_ROLE_EXTERNAL_ID": "ext-42", "LAMBDA3_ROLE_DURATION": "900",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    import boto3 as real_boto3

    def make_session(**kwargs):
        session = real_boto3.Session(**kwargs)
        session.events.register("provide-client-params.sts.AssumeRole", record)
        return session

    from lambda3.action.run import ActionSettings, _ambient_credentials, run

    settings = ActionSettings.from_environ(environ)
    assert run(settings, make_session=make_session, ambient=_ambient_credentials(environ)) == 0
    out = capsys.readouterr().out
    assert calls == [{"RoleArn": ROLE_ARN, "RoleSessionName": "lambda3-local",
                      "DurationSeconds": 900, "ExternalId": "ext-42"}]
    assert f"lambda3: assumed {ROLE_ARN} as lambda3-local" in out
    assert sum(line.startswith("::add-mask::") for line in out.splitlines()) == 4
    assert _read_outputs(tmp_path / "output")["aws-account-id"] == "123456789012"
    assert main({**environ, "LAMBDA3_ROLE_DURATION": "1h"}) == 1
    assert "the input role-duration-seconds is '1h'" in capsys.readouterr().out


def test_assume_role_with_web_identity_reports_the_account(aws, oidc_issuer):
    _create_role(aws)
    token = oidc.fetch_id_token(_id_token_request(oidc_issuer), "sts.amazonaws.com")
    creds = oidc.assume_role(_sts(aws), role_arn=ROLE_ARN, session_name="s1", id_token=token,
                             duration=900)
    assert creds.account_id == "123456789012"
    assert oidc.account_of("arn:aws:sts::210987654321:assumed-role/r/s") == "210987654321"
    assert oidc.account_of("not-an-arn") is None


def _id_token_request(issuer) -> oidc.IdTokenRequest:
    return oidc.IdTokenRequest.from_environ(issuer.runner_env())


def test_an_unexpected_error_is_one_annotation_without_the_token(aws, tmp_path, capsys):
    from lambda3.action.run import main

    environ = {"GITHUB_REPOSITORY": "octo-org/hello", "GITHUB_SHA": "e" * 40,
               "GITHUB_OUTPUT": str(tmp_path),  # a folder: writing an output fails
               "LAMBDA3_AWS_REGION": aws.region, "LAMBDA3_ENDPOINT_URL": aws.endpoint_url,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "LAMBDA3_GITHUB_TOKEN": CANARY_TOKEN}
    assert main(environ) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith(
        "::error title=lambda3::unexpected IsADirectoryError: ")
    assert "Traceback" not in captured.out + captured.err
    assert CANARY_TOKEN not in "\n".join(captured.out.splitlines()[1:]) + captured.err
