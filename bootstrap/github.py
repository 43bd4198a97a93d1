"""GitHub OIDC trust: the account's provider for GitHub's tokens, a deploy role only one
repository (and ref pattern) can assume, and the workflow that uses it."""
from __future__ import annotations

from pathlib import Path

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
# The action's repository, as the README's workflow names it.
ACTION_REPOSITORY = "acme/lambda3"
ROOT = Path(__file__).resolve().parents[1]


def github_spec(where: Account, builder: str, repo: str, ref_pattern: str = "*", *,
                releases: tuple[str, ...] = ()) -> GithubSpec:
    provider = oidc_provider_arn(where)
    name = deploy_role_name(builder, repo)
    role = RoleSpec(
        kind="deploy role", name=name, arn=where.role_arn(name),
        trust=github_trust_policy(provider, repo, ref_pattern),
        policy=deploy_role_policy(where, builder, releases),
        description=f"lambda3: GitHub Actions of {repo} ({ref_pattern}) may invoke {builder}",
    )
    return GithubSpec(PROVIDER_URL, provider, GITHUB_AUDIENCE, THUMBPRINTS, role)


def action_commit(root: Path = ROOT) -> str | None:
    """The full commit SHA of the lambda3 checkout this runs from (None: not a checkout)."""
    try:
        from dulwich.repo import Repo

        with Repo(str(root)) as repo:
            sha = repo.head().decode()
    except Exception:  # no git checkout (an installed wheel), or no dulwich: no pin to offer
        return None
    return sha if len(sha) == 40 else None


def workflow_snippet(role_arn: str, region: str, builder: str,
                     commit: str | None = None) -> str:
    """A job that deploys through the builder with the deploy role (paste into a workflow),
    using the action pinned to a full commit SHA (this checkout's, unless `commit`)."""
    from builder.contract import LAMBDA3_VERSION as version

    commit = commit or action_commit()
    pin = f"{commit} # lambda3 {version}" if commit else \
        "FULL_COMMIT_SHA # the 40-character commit of the lambda3 release you use"
    builder_line = ""
    if builder != "lambda3-builder":
        builder_line = f"\n          builder-function: {builder}"
    return f"""\
jobs:
  deploy:
    runs-on: ubuntu-latest
    permissions:
      id-token: write   # the OIDC token the role trusts
      contents: read    # the builder fetches the source with the job token
    steps:
      - id: lambda3
        uses: {ACTION_REPOSITORY}@{pin}
        with:
          role-to-assume: {role_arn}
          aws-region: {region}{builder_line}
"""
