"""Entry point of the GitHub Action.

action.yml runs it as `python3 -I -S entrypoint.py --locked-deps`: the runner's python3
with only the standard library, this folder and the action's locked dependencies
importable (unpacked first by lambda3/action/install.py unless an earlier job or
actions/cache left them), whatever that Python has installed. Without `--locked-deps` it
imports boto3 from the Python that runs it.
"""
import os
import sys
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _locked_deps() -> bool:
    from lambda3.action import install

    try:
        site = install.ensure(Path(HERE, "requirements-action.lock"))
    except install.InstallError as exc:
        message = str(exc).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::error title=lambda3 setup::{message}", flush=True)
        return False
    sys.path.insert(1, str(site))
    return True


if __name__ == "__main__":
    if "--locked-deps" in sys.argv[1:] and not _locked_deps():
        sys.exit(1)
    from lambda3.action.run import main

    sys.exit(main())
