"""The two projects the benchmark builds: the files under benchmarks/projects/.

Each is a Lambda function (a handler plus a package of its own) with a dependencies
layer, a custom layer shared by both (`shared/benchshared`, the same files in each), a
lambda3 build.yaml and the equivalent SAM template.yaml, for runtime python3.11 on x86_64:

- web: requests, pydantic, cryptography, PyYAML (a signed-webhook receiver);
- data: pandas, numpy, requests, pydantic (a CSV/records aggregator).

The benchmark never writes into them: builds read them, and the redeploy runs copy one
into a work dir and make their code-only change there (`bump_version`).
"""
from __future__ import annotations

import re
from pathlib import Path

PROJECTS_DIR = Path(__file__).resolve().parent / "projects"
RUNTIME = "python3.11"
NAMES = ("web", "data")
_NEEDED = ("build.yaml", "template.yaml", "event.json", "deps/requirements.txt", "src/app.py")


def project_dirs(root: Path = PROJECTS_DIR) -> dict[str, Path]:
    """Each project's folder, checked to hold what every measurement reads."""
    dirs = {name: root / name for name in NAMES}
    missing = [f"{name}/{rel}" for name, path in dirs.items() for rel in _NEEDED
               if not (path / rel).is_file()]
    if missing:
        raise FileNotFoundError(f"benchmark project files missing under {root}: "
                                + ", ".join(missing))
    return dirs


def bump_version(project: Path, version: str) -> None:
    """The code-only change: a new VERSION in the handler."""
    app = project / "src" / "app.py"
    text, count = re.subn(r'^VERSION = ".*"$', f'VERSION = "{version}"', app.read_text(),
                          count=1, flags=re.M)
    if count != 1:
        raise ValueError(f"{app} has no VERSION line to change")
    app.write_text(text)
