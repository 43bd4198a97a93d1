"""`lambda3 bootstrap`: the builder's role, bucket and function, its self-installed
toolchain, and GitHub OIDC trust. `run.bootstrap` is the entry point; `plan` decides (pure),
`state` reads the account, `apply` executes, `toolchain` drives the builder's self-install,
`policies` holds the IAM documents."""
