"""GitHub OIDC trust: the account's provider for GitHub's tokens, a deploy role only one
repository (and ref pattern) can assume, and the workflow that uses it."""
from __future__ import annotations

from bootstrap.plan import GithubSpec, RoleSpec
from bootstrap.policies import (
    GITHUB_AUDIENCE,
    GITHUB_ISSUER,
    Account,
    deploy_role_name,
    deploy_role_policy,
    github_trust_policy,
    oidc_provider_arn,
)

PROVIDER_URL = f"https://{GITHUB_ISSUER}"
# AWS no longer checks these for GitHub (it trusts GitHub's CA), but older accounts' APIs
# still ask for at least one; these are GitHub's published intermediate thumbprints.
THUMBPRINTS = ("6938fd4d98bab03faadb97b34396831e3780aea1",
               "1c58a3a8518e8759bf075b76b750d4f2df264fcd")
ACTION = "org/lambda3-action@v1"


def github_spec(where: Account, builder: str, repo: str, ref_pattern: str = "*") -> GithubSpec:
    provider = oidc_provider_arn(where)
    name = deploy_role_name(builder, repo)
    role = RoleSpec(
        kind="deploy role", name=name, arn=where.role_arn(name),
        trust=github_trust_policy(provider, repo, ref_pattern),
        policy=deploy_role_policy(where, builder),
        description=f"lambda3: GitHub Actions of {repo} ({ref_pattern}) may invoke {builder}",
    )
    return GithubSpec(PROVIDER_URL, provider, GITHUB_AUDIENCE, THUMBPRINTS, role)


def workflow_snippet(role_arn: str, region: str, builder: str) -> str:
    """A job that deploys through the builder with the deploy role (paste into a workflow)."""
    builder_line = ""
    if builder != "lambda3-builder":
        builder_line = f"\n          builder-function: {builder}"
    return f"""\
permissions:
  id-token: write   # the OIDC token the role trusts
  contents: read

jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: {ACTION}
        with:
          role-to-assume: {role_arn}
          aws-region: {region}{builder_line}
"""

