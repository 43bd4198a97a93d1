"""Resource-based policies (AddPermission, GetPolicy, RemovePermission), one per qualifier.

Lambda keeps a policy for the unqualified function and one per alias and per version, each
statement's Resource naming that qualifier; ``FunctionUrlAuthType`` becomes the condition
``StringEquals lambda:FunctionUrlAuthType`` and ``InvokedViaFunctionUrl`` the condition
``Bool lambda:InvokedViaFunctionUrl "true"``. moto shares one policy between a function and
all its versions and aliases and keeps those two parameters as statement keys, so the
emulator serves these calls itself. A policy's RevisionId is new on every change; a
RevisionId given to AddPermission or RemovePermission must be that of the policy there is
(with none yet, there is nothing to check it against).
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from lambda3.embedded.lambda_extras.targets import Missing, Records, Target, find, function_arn
from lambda3.embedded.lambda_extras.wire import (
    Answer,
    ApiError,
    Request,
    conflict,
    invalid,
    not_found,
    pattern_error,
)

NO_RESOURCE = "The resource you requested does not exist."
NO_POLICY = "No policy is associated with the given resource."
LATEST = "We currently do not support adding policies for $LATEST."
BAD_PRINCIPAL = "The provided principal was invalid. Please check the principal and try again."
STALE_ADD = ("The Revision Id provided does not match the latest Revision Id. Call the "
             "GetPolicy API to retrieve the latest Revision Id")
STALE_REMOVE = ("The Revision Id provided does not match the latest Revision Id. Call the "
                "GetFunction/GetAlias API to retrieve the latest Revision Id")
STATEMENT_ID = r"([a-zA-Z0-9-_]+)"
ACTION = r"(lambda:[*]|lambda:[a-zA-Z]+|[*])"


@dataclass
class _Policy:
    statements: list[dict[str, Any]] = field(default_factory=list)
    revision: str = field(default_factory=lambda: str(uuid.uuid4()))


class Policies:
    def __init__(self) -> None:
        self.records = Records()

    def add(self, request: Request) -> Answer:
        if request.qualifier == "$LATEST":
            raise invalid(LATEST)
        target = self._target(request, function_missing="Function not found: {arn}")
        policy = self.records.get(target)
        given = request.body.get("RevisionId")
        if given and policy is not None and given != policy.revision:
            raise ApiError("PreconditionFailedException", STALE_ADD)
        statement = _statement(target, request.body)
        policy = policy or _Policy()
        if any(s["Sid"] == statement["Sid"] for s in policy.statements):
            raise conflict(f"The statement id ({statement['Sid']}) provided already exists. "
                           "Please provide a new statement id, or remove the existing statement.")
        policy.statements.append(statement)
        policy.revision = str(uuid.uuid4())
        self.records.put(target, policy)
        return Answer(201, {"Statement": json.dumps(statement)})

    def get(self, request: Request) -> Answer:
        qualifier = None if request.qualifier == "$LATEST" else request.qualifier
        try:
            target = find(request.account, request.region, request.function, qualifier)
        except Missing:
            raise not_found(NO_RESOURCE) from None
        policy = self.records.get(target)
        if policy is None:
            raise not_found(NO_RESOURCE)
        document = {"Version": "2012-10-17", "Id": "default", "Statement": policy.statements}
        return Answer(200, {"Policy": json.dumps(document), "RevisionId": policy.revision})

    def remove(self, request: Request) -> Answer:
        target = self._target(request, function_missing="No policy found for: {arn}")
        policy = self.records.get(target)
        if policy is None:
            raise not_found(NO_POLICY)
        kept = [s for s in policy.statements if s["Sid"] != request.statement]
        if len(kept) == len(policy.statements):
            raise not_found(f"Statement {request.statement} is not found in resource policy.")
        given = request.query.get("RevisionId")
        if given and given != policy.revision:
            raise ApiError("PreconditionFailedException", STALE_REMOVE)
        if kept:
            policy.statements, policy.revision = kept, str(uuid.uuid4())
        else:
            self.records.pop(target)  # Lambda removes a policy left with no statement
        return Answer(204)

    @staticmethod
    def _target(request: Request, *, function_missing: str) -> Target:
        qualifier = None if request.qualifier == "$LATEST" else request.qualifier
        try:
            return find(request.account, request.region, request.function, qualifier)
        except Missing as e:
            arn = function_arn(request.account, request.region, request.function)
            if e.what == "function":
                raise not_found(function_missing.format(arn=arn)) from None
            word = "Cannot find alias arn" if e.what == "alias" else "Function not found"
            raise not_found(f"{word}: {arn}:{qualifier}") from None


def _statement(target: Target, body: dict[str, Any]) -> dict[str, Any]:
    """The statement Lambda writes for an AddPermission body."""
    sid, action = body.get("StatementId", ""), body.get("Action", "")
    if not re.fullmatch(STATEMENT_ID, sid):
        raise pattern_error(sid, "statementId", STATEMENT_ID)
    if not re.fullmatch(ACTION, action):
        raise pattern_error(action, "action", ACTION)
    statement = {"Sid": sid, "Effect": "Allow",
                 "Principal": _principal(body.get("Principal", ""), target.arn.split(":")[1]),
                 "Action": action, "Resource": target.arn}
    condition = _condition(body)
    if condition:
        statement["Condition"] = condition
    return statement


def _principal(principal: str, partition: str) -> str | dict[str, str]:
    if principal == "*":
        return principal
    if principal.endswith(".amazonaws.com"):
        return {"Service": principal}
    if re.fullmatch(r"\d{12}", principal):
        return {"AWS": f"arn:{partition}:iam::{principal}:root"}
    if re.match(r"arn:aws[a-zA-Z-]*:iam:", principal):
        return {"AWS": principal}
    raise invalid(BAD_PRINCIPAL)


def _condition(body: dict[str, Any]) -> dict[str, dict[str, str]]:
    equals = {key: body[name] for name, key in (
        ("SourceAccount", "AWS:SourceAccount"),
        ("FunctionUrlAuthType", "lambda:FunctionUrlAuthType"),
        ("PrincipalOrgID", "aws:PrincipalOrgID"),
        ("EventSourceToken", "lambda:EventSourceToken")) if body.get(name)}
    condition: dict[str, dict[str, str]] = {"StringEquals": equals} if equals else {}
    if body.get("SourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": body["SourceArn"]}
    if body.get("InvokedViaFunctionUrl") is True:
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    return condition
