"""The GitHub Action: settings from the environment, credentials, one builder invoke, outputs.

`main()` reads `ActionSettings` once from the environment (action.yml maps every input to a
`LAMBDA3_*` variable) and calls `run()`, which takes the outside world as parameters so
tests can drive it against the emulator and the local OIDC issuer.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from builder.clients import Clients
from builder.contract import BuildRequest, BuildResult, Failure
from builder.errors import Lambda3Error
from builder.redact import Redactor
from lambda3.action import oidc, preview, summary, toolkit
from lambda3.remote import invoke_builder


class SettingsError(Lambda3Error):
    step = "settings"


@dataclass(frozen=True)
class ActionSettings:
    aws_region: str
    function_name: str
    repository: str
    ref: str
    builder_function: str = "lambda3-builder"
    role_to_assume: str | None = None
    audience: str = "sts.amazonaws.com"
    role_session_name: str = "lambda3"
    role_duration: int = 3600
    role_external_id: str | None = None
    mask_account_id: bool = True
    allowed_account_ids: tuple[str, ...] = ()
    build_file: str | None = None
    components: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()  # keys of the build file's functions: ; () all
    alias: str | None = None
    publish: bool = True
    dry_run: bool = False
    rollout: str | None = None  # a strategy; none: the build file's
    allow_older: bool = False
    index_credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    promote_from: str | None = None  # an alias: promote its version to `alias`, no build
    preview: str | None = None  # function | alias: the pull request's own (lambda3.action.preview)
    pull_request: preview.PullRequest | None = None  # with `preview`: this run's
    builder_timeout: int = 900
    endpoint_url: str | None = None
    output_path: str | None = None
    summary_path: str | None = None
    github_token: str = field(default="", repr=False)
    id_token_request: oidc.IdTokenRequest | None = field(default=None, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ActionSettings:
        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        github_repo = get("GITHUB_REPOSITORY")
        server = (get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        settings = cls(
            aws_region=_required(
                get("LAMBDA3_AWS_REGION") or get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
                "aws-region", hint="set `aws-region:` under `with:`, or AWS_REGION in the "
                                   "job's environment"),
            function_name=_required(get("LAMBDA3_FUNCTION_NAME") or _repo_name(github_repo),
                                    "function-name"),
            repository=_required(get("LAMBDA3_REPOSITORY")
                                 or (github_repo and f"{server}/{github_repo}.git"), "repository"),
            ref=_required(get("LAMBDA3_REF") or get("GITHUB_SHA"), "ref"),
            builder_function=get("LAMBDA3_BUILDER_FUNCTION") or "lambda3-builder",
            role_to_assume=get("LAMBDA3_ROLE_TO_ASSUME"),
            audience=get("LAMBDA3_AUDIENCE") or "sts.amazonaws.com",
            role_session_name=oidc.session_name_for(
                get("LAMBDA3_ROLE_SESSION_NAME") or f"lambda3-{get('GITHUB_RUN_ID') or 'local'}"),
            role_duration=_integer(get("LAMBDA3_ROLE_DURATION"), "role-duration-seconds", 3600),
            role_external_id=get("LAMBDA3_ROLE_EXTERNAL_ID"),
            mask_account_id=parse_bool(get("LAMBDA3_MASK_AWS_ACCOUNT_ID"),
                                       "mask-aws-account-id", default=True),
            allowed_account_ids=parse_account_ids(environ.get("LAMBDA3_ALLOWED_ACCOUNT_IDS", "")),
            build_file=get("LAMBDA3_BUILD_FILE"),
            components=parse_components(environ.get("LAMBDA3_COMPONENTS", "")),
            functions=parse_components(environ.get("LAMBDA3_FUNCTIONS", "")),
            alias=get("LAMBDA3_ALIAS"),
            publish=parse_bool(get("LAMBDA3_PUBLISH"), "publish", default=True),
            dry_run=parse_bool(get("LAMBDA3_DRY_RUN"), "dry-run", default=False),
            rollout=get("LAMBDA3_ROLLOUT"), promote_from=get("LAMBDA3_PROMOTE_FROM"),
            allow_older=parse_bool(get("LAMBDA3_ALLOW_OLDER"), "allow-older", default=False),
            index_credentials=_index_credentials(environ),
            builder_timeout=_integer(get("LAMBDA3_BUILDER_TIMEOUT"), "builder-timeout", 900),
            endpoint_url=get("LAMBDA3_ENDPOINT_URL"),
            output_path=get("GITHUB_OUTPUT"),
            summary_path=get("GITHUB_STEP_SUMMARY"),
            github_token=environ.get("LAMBDA3_GITHUB_TOKEN", "").strip(),
            id_token_request=_id_token_request(environ),
        )
        mode = preview.read_mode(get("LAMBDA3_PREVIEW"))
        return _previewing(settings, mode, environ) if mode else settings

    def request(self) -> BuildRequest:
        """The builder's request (the client adds `log_marker`)."""
        pull = self.pull_request.number if self.pull_request else None
        return BuildRequest(
            action="plan" if self.dry_run else "build", repository=self.repository,
            ref=self.ref, token=self.github_token or None, function=self.function_name,
            build_file=self.build_file, components=self.components, alias=self.alias,
            publish=self.publish, rollout=self.rollout, functions=self.functions,
            allow_older=self.allow_older, index_credentials=self.index_credentials,
            preview=pull if self.preview == "function" else None)


def _previewing(settings: ActionSettings, mode: str, environ: Mapping[str, str]
                ) -> ActionSettings:
    """`preview`: the pull request's head (unless `ref` is given), deployed to its own
    function (the builder names it) or to alias pr-<N>, all at once unless `rollout` says
    otherwise (a preview has no traffic to shift; its checks still run)."""
    from dataclasses import replace

    if settings.promote_from:
        raise SettingsError("preview and promote-from do not go together",
                            hint="previews are built from the pull request; leave one empty")
    if mode == "alias" and settings.alias:
        raise SettingsError(f"preview: alias names the alias pr-<N> itself, and alias is "
                            f"{settings.alias!r}", hint="leave alias empty")
    pull = preview.read_pull_request(environ)
    return replace(settings, preview=mode, pull_request=pull,
                   rollout=settings.rollout or "all-at-once",
                   ref=environ.get("LAMBDA3_REF", "").strip() or pull.head_sha or settings.ref,
                   alias=pull.alias() if mode == "alias" else settings.alias)


def _index_credentials(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    from lambda3.settings import read_index_credentials

    try:
        return read_index_credentials(None, environ)
    except Lambda3Error as error:
        raise SettingsError("the input index-credentials is not JSON of host to "
                            "\"user:password\"", hint=error.hint) from None


def parse_components(text: str) -> tuple[str, ...]:
    """Component names separated by spaces, commas or newlines."""
    return tuple(name for name in re.split(r"[\s,]+", text) if name)


def parse_account_ids(text: str) -> tuple[str, ...]:
    """`allowed-account-ids`: 12-digit account ids separated by commas (or spaces)."""
    ids = parse_components(text)
    wrong = [value for value in ids if not re.fullmatch(r"\d{12}", value)]
    if wrong:
        raise SettingsError(f"the input allowed-account-ids holds {wrong[0]!r}",
                            hint="list 12-digit AWS account ids, separated by commas")
    return ids


def parse_bool(value: str | None, name: str, *, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise SettingsError(f"the input {name} is {value!r}", hint="use true or false")


def _integer(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise SettingsError(f"the input {name} is {value!r}", hint="use a whole number")
    return int(value)


def _required(value: str | None, name: str, hint: str | None = None) -> str:
    if not value:
        raise SettingsError(f"the input {name} is required",
                            hint=hint or f"set `{name}:` under `with:`")
    return value


def _repo_name(github_repository: str | None) -> str | None:
    return github_repository.rsplit("/", 1)[-1] if github_repository else None


def _id_token_request(environ: Mapping[str, str]) -> oidc.IdTokenRequest | None:
    try:
        return oidc.IdTokenRequest.from_environ(environ)
    except oidc.OidcError:
        return None


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        settings = ActionSettings.from_environ(environ)
    except Lambda3Error as exc:
        toolkit.error(str(exc), title="lambda3 settings")
        return 1
    try:
        return run(settings, ambient=_ambient_credentials(environ))
    except Exception as exc:  # one escaped annotation, never a traceback of inputs
        redact = Redactor()
        redact.add(settings.github_token)
        toolkit.error(redact(f"unexpected {type(exc).__name__}: {exc}"), title="lambda3")
        return 1


def _ambient_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """Credentials from the environment mapping; empty means boto3's default chain."""
    names = {"aws_access_key_id": "AWS_ACCESS_KEY_ID",
             "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
             "aws_session_token": "AWS_SESSION_TOKEN"}
    found = {key: environ[var] for key, var in names.items() if environ.get(var)}
    return found if "aws_access_key_id" in found else {}


def run(settings: ActionSettings, *, stream: TextIO | None = None, http: Any = None,
        make_session: Callable[..., Any] | None = None, ambient: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep) -> int:
    """Credentials, the builder invoke, then outputs, summary and annotations. Exit code.
    `http` is the OIDC token fetch (`oidc.HttpGet`, default urllib)."""
    out = stream or sys.stdout
    toolkit.add_mask(settings.github_token, stream=out)
    for _, credential in settings.index_credentials:
        toolkit.add_mask(credential, stream=out)
        toolkit.add_mask(credential.partition(":")[2], stream=out)
    try:
        clients, account = _clients(settings, out=out, http=http, make_session=make_session,
                                    ambient=ambient or {}, sleep=sleep)
        _write_outputs(settings, {"aws-account-id": account})
        if settings.pull_request is not None and settings.pull_request.closed:
            return _remove_preview(settings, clients, out)
        result = (_promote(settings, clients) if settings.promote_from
                  else _invoke(settings, clients, out))
    except Lambda3Error as exc:
        return _report_failure(settings, Failure.of(exc), out)
    if not result.ok:
        if len(result.functions) > 1:  # the versions of those deployed before the failure
            _write_outputs(settings, outputs_from_result(result))
        return _report_failure(settings, result.error or Failure(), out, result.functions)
    _write_outputs(settings, outputs_from_result(result))
    if settings.summary_path:
        named = None if settings.preview == "function" else settings.function_name
        text = summary.render_summary(result, function=named, dry_run=settings.dry_run)
        if settings.pull_request is not None:
            text += (f"\nPreview of pull request #{settings.pull_request.number}: removed "
                     "when it closes.\n")
        toolkit.append_summary(text, path=settings.summary_path)
    if not settings.dry_run:
        from builder.aws import Aws
        from lambda3.rollout import drive_in_action

        try:  # the rollout the builder (or the promote) started, and prune: {keep: N}
            for one in result.each_function():  # each function of `functions:` on its own
                drive_in_action(Aws(clients), one, out=out, summary_path=settings.summary_path)
        except Lambda3Error as exc:
            return _report_failure(settings, Failure.of(exc), out)
    done = "planned" if settings.dry_run else f"deployed version {result.version or '-'}"
    if len(result.functions) > 1:
        versions = ", ".join(f"{f.name} {f.version or '-'}" for f in result.functions)
        _say(f"lambda3: {'planned' if settings.dry_run else 'deployed'} {versions}", out)
        return 0
    _say(f"lambda3: {done} of {result.function_arn or settings.function_name}", out)
    return 0


def _remove_preview(settings: ActionSettings, clients: Clients, out: TextIO) -> int:
    """The pull request closed: delete what its preview made (dry-run: list it)."""
    from builder.aws import Aws
    from builder.reconcile import REPOSITORY_TAG, preview_tags
    from lambda3.previews import remove_pull_request

    pull = settings.pull_request
    repository = dict(preview_tags(settings.repository, pull.number))[REPOSITORY_TAG]
    try:
        lines = remove_pull_request(
            Aws(clients), repository=repository, pr=pull.number, dry_run=settings.dry_run,
            alias_of=settings.function_name if settings.preview == "alias" else None)
    except Lambda3Error as exc:
        return _report_failure(settings, Failure.of(exc), out)
    for line in lines:
        _say(f"lambda3: {line}", out)
    if settings.summary_path:
        toolkit.append_summary(preview.removed_summary(pull.number, lines,
                                                       dry_run=settings.dry_run),
                               path=settings.summary_path)
    return 0


def _promote(settings: ActionSettings, clients: Clients) -> BuildResult:
    """`promote-from`: the version that alias points at, to `alias`, with no build."""
    from builder.aws import Aws
    from lambda3.commands.promote import as_result, promote

    if not settings.alias:
        raise SettingsError("promote-from needs alias: the alias to promote to")
    aws = Aws(clients)
    done = promote(aws, settings.function_name, settings.promote_from, settings.alias,
                   rollout=settings.rollout)
    return as_result(done, aws)


def _clients(settings: ActionSettings, *, out: TextIO, http: Any,
             make_session: Callable[..., Any] | None, ambient: Mapping[str, str],
             sleep: Callable[[float], None]) -> tuple[Clients, str]:
    """Clients on the ambient credentials, or on those of the role assumed (GitHub OIDC, or
    AssumeRole with `role-external-id`), and the account they belong to, checked."""
    def clients(credentials: Mapping[str, str]) -> Clients:
        session = make_session(region_name=settings.aws_region, **credentials) \
            if make_session else None
        return Clients(region=settings.aws_region, endpoint_url=settings.endpoint_url,
                       credentials=credentials, session=session)

    if not settings.role_to_assume:
        chosen = clients(ambient)
        account = _check_account(settings, _caller_account(chosen), out)
        return chosen, account
    def mask(secret: str) -> None:
        toolkit.add_mask(secret, stream=out)

    if settings.role_external_id:
        creds = oidc.assume_role(clients(ambient).client("sts"), role_arn=settings.role_to_assume,
                                 session_name=settings.role_session_name,
                                 external_id=settings.role_external_id,
                                 duration=settings.role_duration, sleep=sleep)
        for secret in (creds.access_key_id, creds.secret_access_key, creds.session_token):
            mask(secret)
    elif settings.id_token_request is None:
        raise oidc.missing_id_token_error()
    else:
        creds = oidc.exchange(settings.id_token_request, sts=_unsigned_sts(clients({})),
                              http=http, role_arn=settings.role_to_assume,
                              audience=settings.audience, session_name=settings.role_session_name,
                              duration=settings.role_duration, sleep=sleep, mask=mask)
    account = _check_account(settings, creds.account_id or "", out)
    _say(f"lambda3: assumed {settings.role_to_assume} as {settings.role_session_name}", out)
    return clients(creds.as_session_kwargs()), account


def _caller_account(clients: Clients) -> str:
    """The account of the ambient credentials (STS GetCallerIdentity)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return str(clients("sts").get_caller_identity()["Account"])
    except NoCredentialsError:
        raise oidc.OidcError("no AWS credentials are available to this job",
                             hint="set role-to-assume (GitHub OIDC), or run "
                                  "aws-actions/configure-aws-credentials first") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise oidc.OidcError(f"STS GetCallerIdentity refused the job's credentials: "
                             f"{error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise oidc.OidcError(f"STS GetCallerIdentity failed: {exc}") from None


def _check_account(settings: ActionSettings, account: str, out: TextIO) -> str:
    """Mask the account id (unless told not to) and refuse one allowed-account-ids lacks."""
    if settings.mask_account_id:
        toolkit.add_mask(account, stream=out)
    allowed = settings.allowed_account_ids
    if allowed and account not in allowed:
        raise oidc.OidcError(
            f"the credentials are for account {account or '(unknown)'}, which "
            f"allowed-account-ids ({', '.join(allowed)}) does not list; nothing was invoked")
    return account


def _unsigned_sts(clients: Clients) -> Any:
    """AssumeRoleWithWebIdentity is not signed: it needs no credentials of ours."""
    from botocore import UNSIGNED
    from botocore.config import Config

    return clients.client("sts", config=Config(signature_version=UNSIGNED,
                                                retries={"total_max_attempts": 1}))


def _invoke(settings: ActionSettings, clients: Clients, out: TextIO) -> BuildResult:
    what = "planning" if settings.dry_run else "building"
    source = Redactor()(f"{settings.repository}@{settings.ref}")
    _say(f"lambda3: {what} {source} into {settings.function_name} "
         f"with {settings.builder_function}", out)
    with toolkit.group("builder log", stream=out), toolkit.stop_commands(stream=out):
        return invoke_builder(clients, settings.builder_function, settings.request(),
                              builder_timeout=settings.builder_timeout,
                              on_log_line=lambda line: _say(line, out))


def _write_outputs(settings: ActionSettings, outputs: Mapping[str, str]) -> None:
    if not settings.output_path:
        return
    for name, value in outputs.items():
        toolkit.set_output(name, value, path=settings.output_path)


def outputs_from_result(result: BuildResult) -> dict[str, str]:
    return {
        "version": str(result.version or ""),
        "function-arn": str(result.function_arn or ""),
        "code-sha256": str(result.code_sha256 or ""),
        "commit": str(result.commit or ""),
        "alias": str(result.alias or ""),
        # a dry run publishes nothing: the layers it would publish have no ARN yet
        "layer-arns": json.dumps([layer.arn for layer in result.layers if layer.arn]),
        "changed-layers": json.dumps(list(result.changed_layers)),
        # by function key; a builder without `functions` answers for its one function
        "versions": json.dumps({f.key: f.version for f in result.functions}
                               or {"function": result.version}),
        "function-url": str(result.function_url or ""),
    }


def _report_failure(settings: ActionSettings, error: Failure, out: TextIO,
                    functions: tuple = ()) -> int:
    toolkit.error(error.message, file=error.file, line=error.line,
                  title=f"lambda3 {error.step}", stream=out)
    if settings.summary_path:
        toolkit.append_summary(summary.render_failure(error, function=settings.function_name,
                                                      functions=functions),
                               path=settings.summary_path)
    return 1


def _say(line: str, out: TextIO) -> None:
    """One line of the step's log, made inert (`toolkit.inert`): text from inputs or
    results can neither start a line of its own nor be read as a workflow command."""
    out.write(toolkit.inert(line) + "\n")
    out.flush()
