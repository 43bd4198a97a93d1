"""Recursive loop detection (Put/GetFunctionRecursionConfig): Terminate unless set to Allow.

The setting belongs to the function (no qualifier), so it goes with the function: a function
deleted and created again is back to Terminate.
"""
from __future__ import annotations

from lambda3.embedded.lambda_extras.targets import Missing, Records, Target, find, function_arn
from lambda3.embedded.lambda_extras.wire import Answer, Request, enum_error, not_found

LOOPS = ("Terminate", "Allow")  # in the order Lambda's validation message names them
DEFAULT = "Terminate"


class Recursion:
    def __init__(self) -> None:
        self.records = Records()

    def put(self, request: Request) -> Answer:
        target = self._function(request)
        loop = request.body.get("RecursiveLoop")
        if loop not in LOOPS:
            raise enum_error(loop, "recursiveLoop", ", ".join(LOOPS))
        self.records.put(target, loop)
        return Answer(200, {"RecursiveLoop": loop})

    def get(self, request: Request) -> Answer:
        loop = self.records.get(self._function(request)) or DEFAULT
        return Answer(200, {"RecursiveLoop": loop})

    @staticmethod
    def _function(request: Request) -> Target:
        try:
            return find(request.account, request.region, request.function)
        except Missing:
            arn = function_arn(request.account, request.region, request.function)
            raise not_found(f"Function not found: {arn}") from None
