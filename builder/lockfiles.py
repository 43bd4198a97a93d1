"""pyproject.toml projects as requirement lists: which lock a project has, and its export.

`find_project` reads a `pyproject.toml` (or the folder holding one) and finds its lock. When
several exist, the one written from pyproject.toml by the tool that manages the project wins
over an exported one: `uv.lock` (next to pyproject.toml, or at the root of the uv workspace
the project is a member of), then `poetry.lock`, then `pylock.toml` (PEP 751); the others
are named in a warning. `export` writes the locked set for the chosen dependency groups and
extras as a requirements file: every registry package pinned with the hashes the lock
records, the project itself and the local packages it depends on (workspace members, path
dependencies) as `name @ file:///...` regular installs, git packages at their locked
commit. Markers stay, so the installer keeps what the target needs. A project without a
lock becomes its own requirement (or its `[project.dependencies]` when it is no package),
resolved by the installer, with a warning that nothing was locked.

Poetry is not needed: poetry.lock is read here (lock-version 2.1, which records groups, and
1.x). uv.lock is exported by uv itself (`uv export --locked`, which refuses a lock that no
longer matches pyproject.toml), as the lock's own tool reads it best; pylock.toml is read
here.
"""
from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.errors import InstallError, SpecError
from builder.tomlread import read_toml

log = logging.getLogger(__name__)

LOCKS = ("uv.lock", "poetry.lock", "pylock.toml")  # the order in which a lock wins
PYPI = "https://pypi.org/simple"
Runner = Callable[[list[str], dict[str, str], "Path | None"], subprocess.CompletedProcess]
_TRUE, _FALSE = 'python_version >= "0"', 'python_version < "0"'
_SELECTOR = re.compile(r"""(['"])([^'"]*)\1\s+(not\s+in|in)\s+(extras|dependency_groups)"""
                       r"""|\bextra\s*(==|!=)\s*(['"])([^'"]*)\6""")


@dataclass(frozen=True)
class Selection:
    """What besides the main dependencies to install: dependency groups and extras."""

    groups: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()


@dataclass(frozen=True)
class Project:
    root: Path            # the folder holding pyproject.toml, resolved
    shown: str            # its pyproject.toml as the repository names it
    pyproject: dict[str, Any] = field(repr=False)
    lock: Path | None     # the lock that wins, None when the project has none
    ignored: tuple[str, ...] = ()  # other locks found (repository paths)

    @property
    def kind(self) -> str | None:
        return self.lock.name if self.lock else None

    @property
    def name(self) -> str | None:
        return (self.pyproject.get("project") or {}).get("name") or \
            (self.pyproject.get("tool", {}).get("poetry") or {}).get("name")

    @property
    def is_package(self) -> bool:
        """Whether the project installs as a package of its own (uv's and Poetry's rules:
        a build system, and not turned off by `tool.uv.package` / `package-mode`)."""
        tool = self.pyproject.get("tool") or {}
        if (tool.get("uv") or {}).get("package") is False:
            return False
        if (tool.get("poetry") or {}).get("package-mode") is False:
            return False
        return "build-system" in self.pyproject


@dataclass(frozen=True)
class Exported:
    path: Path                    # the requirements file written
    locked: bool                  # a lock decided every version
    local: tuple[Path, ...]       # folders installed from source (the project, members)
    warnings: tuple[str, ...] = ()


def is_project(path: Path) -> bool:
    """Whether a `layers.dependencies` entry names a project rather than requirements."""
    return path.name == "pyproject.toml" or (path.is_dir() and (path / "pyproject.toml").is_file())


def find_project(path: Path, repo: Path) -> Project:
    """The project at `path` (a pyproject.toml or its folder) and the lock that wins."""
    repo = repo.resolve()
    root = (path if path.is_dir() else path.parent).resolve()
    shown = _shown(root / "pyproject.toml", repo)
    pyproject = read_toml(root / "pyproject.toml", shown)
    found = [lock for lock in (_uv_lock(root, repo), root / "poetry.lock", root / "pylock.toml")
             if lock is not None and lock.is_file()]
    for lock in found:
        if not lock.resolve().is_relative_to(repo):
            raise SpecError(f"{_shown(lock, repo)} is outside the repository", file=shown)
    ignored = tuple(_shown(lock, repo) for lock in found[1:])
    return Project(root, shown, pyproject, found[0] if found else None, ignored)


def export(project: Project, selection: Selection, work: Path, repo: Path, *,
           runner: Runner | None = None, env: Mapping[str, str] | None = None) -> Exported:
    """Write the requirements of `project` for `selection` into `work` (a new file)."""
    repo = repo.resolve()
    warnings = [f"{project.shown}: {', '.join(project.ignored)} ignored: "
                f"{_shown(project.lock, repo)} wins (docs/install.md)"] if project.ignored else []
    if project.lock is None:
        lines, local = _unlocked(project, selection)
        warnings.append(f"{project.shown}: no lock (uv.lock, poetry.lock or pylock.toml): its "
                        "dependencies were resolved at build time, nothing was locked")
    elif project.kind == "uv.lock":
        lines, local = _uv_export(project, selection, repo, runner, env, warnings)
    elif project.kind == "poetry.lock":
        lines, local = _poetry(project, selection, repo)
    else:
        lines, local = _pylock(project, selection, repo)
    for folder in local:
        if not folder.is_relative_to(repo):
            raise SpecError(f"{_shown(project.lock or project.root, repo)}: a local package "
                            f"at {folder} is outside the repository", file=project.shown)
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"project-{len(list(work.glob('project-*.txt')))}.txt"
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    log.info("%s: %s", project.shown, f"locked by {_shown(project.lock, repo)}"
             if project.lock else "not locked")
    return Exported(out, project.lock is not None, tuple(local), tuple(warnings))


def inputs(project: Project, repo: Path) -> list[Path]:
    """The files that decide what `export` writes: pyproject.toml, the lock and, for a
    workspace, the workspace's pyproject.toml (local package folders come from `export`)."""
    found = [project.root / "pyproject.toml"]
    if project.lock is not None:
        found += [project.lock, project.lock.parent / "pyproject.toml"]
    return list(dict.fromkeys(p.resolve() for p in found if p.is_file()))


@dataclass(frozen=True)
class DependencySet:
    """The entries of `layers.dependencies`: requirements files, and projects exported."""

    requirements: tuple[Path, ...]
    exported: tuple[tuple[Project, Exported], ...]

    @property
    def locked(self) -> bool:
        """Every entry is a locked project: the set is complete, nothing is resolved."""
        return not self.requirements and all(e.locked for _, e in self.exported)

    @property
    def warnings(self) -> list[str]:
        return [w for _, e in self.exported for w in e.warnings]

    def generated(self) -> list[tuple[Path, str]]:
        return [(e.path, f"{p.shown} ({p.kind or 'not locked'})") for p, e in self.exported]

    def key_inputs(self, repo: Path) -> list[tuple[str, Path | str]]:
        """(name, file or folder) of what decides the projects' installed set, and
        (name, text) of each export with this checkout's location taken out."""
        repo = repo.resolve()
        found: list[tuple[str, Path | str]] = []
        for project, exported in self.exported:
            for path in [*inputs(project, repo), *exported.local]:
                found.append((_shown(path, repo), path))
            text = exported.path.read_text(encoding="utf-8").replace(repo.as_uri(), "<repo>")
            found.append((f"export of {project.shown}", text))
        return found


def dependency_set(entries: Sequence[Path], repo: Path, selection: Selection, work: Path, *,
                   runner: Runner | None = None) -> DependencySet:
    """Sort `entries` into requirements files and projects, exporting each project."""
    requirements, exported = [], []
    for entry in entries:
        if not is_project(entry):
            requirements.append(entry)
            continue
        project = find_project(entry, repo)
        exported.append((project, export(project, selection, work, repo, runner=runner)))
    if (selection.groups or selection.extras) and not exported:
        raise SpecError("groups and extras apply to pyproject.toml projects, and "
                        "layers.dependencies lists none",
                        hint="list the project's pyproject.toml (or its folder)")
    return DependencySet(tuple(requirements), tuple(exported))


# -- no lock -----------------------------------------------------------------------------


def _unlocked(project: Project, selection: Selection) -> tuple[list[str], list[Path]]:
    meta = project.pyproject.get("project")
    if not isinstance(meta, dict):
        raise SpecError("no [project] table: without a lock, lambda3 installs "
                        "[project.dependencies]", file=project.shown,
                        hint="add a [project] table, or lock the project (uv lock)")
    unknown = [e for e in selection.extras if e not in (meta.get("optional-dependencies") or {})]
    if unknown:
        raise SpecError(f"extras {', '.join(unknown)} are not in "
                        "[project.optional-dependencies]", file=project.shown)
    lines = [text.strip() for group in selection.groups
             for text in _dependency_group(project, group)]
    if project.is_package:
        extras = f"[{','.join(selection.extras)}]" if selection.extras else ""
        return [f"{project.name}{extras} @ {project.root.as_uri()}", *lines], [project.root]
    lines += list(meta.get("dependencies") or [])
    for extra in selection.extras:
        lines += list(meta["optional-dependencies"][extra])
    return lines, []


def _dependency_group(project: Project, group: str) -> list[str]:
    groups = project.pyproject.get("dependency-groups") or {}
    if group not in groups:
        raise SpecError(f"dependency group {group!r} is not in [dependency-groups]",
                        file=project.shown)
    found = []
    for item in groups[group]:
        if isinstance(item, dict) and "include-group" in item:
            found += _dependency_group(project, item["include-group"])
        elif isinstance(item, str):
            found.append(item)
    return found


# -- uv.lock -----------------------------------------------------------------------------


def _uv_lock(root: Path, repo: Path) -> Path | None:
    """uv.lock next to pyproject.toml, else at the root of the workspace holding it."""
    if (root / "uv.lock").is_file():
        return root / "uv.lock"
    for parent in root.parents:
        if not parent.is_relative_to(repo):
            return None
        if (parent / "uv.lock").is_file() and (parent / "pyproject.toml").is_file():
            workspace = read_toml(parent / "pyproject.toml", _shown(parent / "pyproject.toml",
                                                                    repo))
            if "workspace" in ((workspace.get("tool") or {}).get("uv") or {}):
                return parent / "uv.lock"
    return None


def _uv_export(project: Project, selection: Selection, repo: Path, runner: Runner | None,
               env: Mapping[str, str] | None,
               warnings: list[str]) -> tuple[list[str], list[Path]]:
    lock = read_toml(project.lock, _shown(project.lock, repo))
    base = project.lock.parent
    local = {_normalise(p["name"]): (base / _uv_local_path(p)).resolve()
             for p in lock.get("package", []) if _uv_local_path(p) is not None}
    proc = _uv_export_run(project, selection, repo, runner, env, warnings)
    lines, used = [], []
    for line in _joined(proc.stdout or ""):
        path = line.split(" ", 1)[0]
        if path in ("--index-url", "-i", "--extra-index-url"):
            url = line.split(" ", 1)[1].strip()
            lines += [] if url.rstrip("/") == PYPI else [f"--extra-index-url {url}"]
        elif path.startswith((".", "/")) or path.startswith("file:"):
            folder = (base / path).resolve()
            name = next((n for n, p in local.items() if p == folder), None)
            if name is None:
                raise InstallError(f"uv export named {path}, which uv.lock does not list as "
                                   "a local package", file=project.shown)
            lines.append(f"{name} @ {folder.as_uri()}{line[len(path):]}")
            used.append(folder)
        else:
            lines.append(line)
    return lines, used


def _uv_export_run(project: Project, selection: Selection, repo: Path, runner: Runner | None,
                   env: Mapping[str, str] | None,
                   warnings: list[str]) -> subprocess.CompletedProcess:
    """`uv export --locked`: a lock that no longer matches pyproject.toml is refused (uv
    checks a current lock without the network). When uv cannot check it (e.g. a member's
    dynamic metadata that will not build here), the lock is exported as it is, with a
    warning."""
    from builder.process import child_env

    argv = [_uv(), "export", "--format", "requirements-txt", "--no-editable", "--no-header",
            "--no-annotate", "--emit-index-url", "--no-default-groups", "--project",
            str(project.root), "--color", "never"]
    if project.lock.parent != project.root and project.name:
        argv += ["--package", project.name]
    for group in selection.groups:
        argv += ["--group", group]
    for extra in selection.extras:
        argv += ["--extra", extra]
    shown = _shown(project.lock, repo)
    run = runner or _run
    proc = run([*argv, "--locked"], child_env(env), project.root)
    said = (proc.stderr or proc.stdout or "").strip()
    if proc.returncode != 0 and "needs to be updated" in said:
        raise InstallError(f"{shown} is out of date: it no longer matches {project.shown}",
                           file=project.shown, hint="run `uv lock` and commit uv.lock")
    if proc.returncode != 0:
        why = said.splitlines()[-1].strip() if said else "no reason given"
        warnings.append(f"{project.shown}: uv could not check that {shown} matches it ({why}); "
                        "the lock was exported as it is")
        proc = run([*argv, "--frozen", "--offline"], child_env(env), project.root)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-10:])
        raise InstallError(f"uv export of {shown} failed:\n{tail}", file=project.shown,
                           hint="run `uv lock` and commit uv.lock; check groups and extras")
    return proc


def _uv_local_path(package: Mapping[str, Any]) -> str | None:
    source = package.get("source") or {}
    for kind in ("editable", "directory", "virtual"):
        if kind in source:
            return source[kind]
    return None


def _uv() -> str:
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        raise InstallError("uv.lock is exported with uv, which is not installed here",
                           hint="install uv (pip install uv), or export the lock to "
                                "pylock.toml or requirements.txt") from None


def _run(argv: list[str], env: dict[str, str], cwd: Path | None) -> subprocess.CompletedProcess:
    from builder.process import run

    return run(argv, env=env, cwd=cwd, step="install")


def _joined(text: str) -> list[str]:
    """Requirement lines with `\\` continuations joined and comments dropped."""
    lines, pending = [], ""
    for raw in text.splitlines():
        raw = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if raw.endswith("\\"):
            pending += raw[:-1].strip() + " "
            continue
        line, pending = (pending + raw.strip()).strip(), ""
        if line:
            lines.append(line)
    return lines


# -- poetry.lock -------------------------------------------------------------------------


def _poetry(project: Project, selection: Selection, repo: Path) -> tuple[list[str], list[Path]]:
    shown = _shown(project.lock, repo)
    lock = read_toml(project.lock, shown)
    version = str((lock.get("metadata") or {}).get("lock-version", ""))
    if version == "2.0" or not version:
        raise SpecError(f"lock-version {version or '(none)'} does not record which group each "
                        "package belongs to", file=shown,
                        hint="run `poetry lock` with Poetry 2 and commit poetry.lock")
    groups = {"main", *selection.groups}
    extra_packages = {_normalise(n) for extra in selection.extras
                      for n in (lock.get("extras") or {}).get(extra, [])}
    unknown = [e for e in selection.extras if e not in (lock.get("extras") or {})]
    if unknown:
        raise SpecError(f"extras {', '.join(unknown)} are not in poetry.lock", file=shown)
    lines, local = _indexes(p.get("source") for p in lock.get("package", [])), []
    for package in lock.get("package", []):
        in_groups = package.get("groups") or [package.get("category", "main")]
        chosen = [g for g in in_groups if g in groups]
        if not chosen:
            continue
        if package.get("optional") and _normalise(package["name"]) not in extra_packages:
            continue
        marker = _poetry_marker(package.get("markers"), chosen)
        line, folder = _poetry_line(package, project.lock.parent, shown)
        lines.append(_with_marker(line, marker, selection))
        local += [folder] if folder else []
    if project.is_package and project.name:
        lines.append(f"{project.name} @ {project.root.as_uri()}")
        local.append(project.root)
    return lines, local


def _poetry_marker(markers: Any, chosen: Sequence[str]) -> str | None:
    if isinstance(markers, dict):
        found = [markers.get(g) for g in chosen]
        return None if None in found else " or ".join(f"({m})" for m in found)
    return markers or None


def _poetry_line(package: Mapping[str, Any], base: Path, shown: str) -> tuple[str, Path | None]:
    name, version = package["name"], package["version"]
    source = package.get("source") or {}
    kind = source.get("type")
    hashes = " ".join(f"--hash={f['hash']}" for f in package.get("files", []) if f.get("hash"))
    if kind in (None, "legacy"):
        if not hashes:
            raise SpecError(f"{name} {version} has no file hashes", file=shown,
                            hint="run `poetry lock` again and commit poetry.lock")
        return f"{name}=={version} {hashes}", None
    if kind == "directory":
        folder = (base / source["url"]).resolve()
        return f"{name} @ {folder.as_uri()}", folder
    if kind == "file":
        return f"{name} @ {(base / source['url']).resolve().as_uri()} {hashes}".rstrip(), None
    if kind == "git":
        sub = f"#subdirectory={source['subdirectory']}" if source.get("subdirectory") else ""
        commit = source.get("resolved_reference") or source.get("reference")
        return f"{name} @ git+{source['url']}@{commit}{sub}", None
    if kind == "url":
        return f"{name} @ {source['url']} {hashes}".rstrip(), None
    raise SpecError(f"{name}: source type {kind!r} is not supported", file=shown)


def _indexes(sources) -> list[str]:
    urls = sorted({s["url"] for s in sources if s and s.get("type") == "legacy" and s.get("url")})
    return [f"--extra-index-url {url}" for url in urls]


# -- pylock.toml (PEP 751) ---------------------------------------------------------------


def _pylock(project: Project, selection: Selection, repo: Path) -> tuple[list[str], list[Path]]:
    shown = _shown(project.lock, repo)
    lock = read_toml(project.lock, shown)
    if not str(lock.get("lock-version", "")).startswith("1."):
        raise SpecError(f"lock-version {lock.get('lock-version')!r} is not supported (1.x is)",
                        file=shown)
    selected = Selection(tuple({*lock.get("default-groups", []), *selection.groups}),
                         selection.extras)
    base = project.lock.parent
    indexes = {p.get("index") for p in lock.get("packages", [])} - {None, PYPI, PYPI + "/"}
    lines, local = [f"--extra-index-url {url}" for url in sorted(indexes)], []
    for package in lock.get("packages", []):
        line, folder = _pylock_line(package, base, shown)
        lines.append(_with_marker(line, package.get("marker"), selected))
        local += [folder] if folder else []
    return lines, local


def _pylock_line(package: Mapping[str, Any], base: Path, shown: str) -> tuple[str, Path | None]:
    name = package["name"]
    if "directory" in package:
        folder = (base / package["directory"]["path"]).resolve()
        return f"{name} @ {folder.as_uri()}", folder
    if "vcs" in package:
        vcs = package["vcs"]
        sub = f"#subdirectory={vcs['subdirectory']}" if vcs.get("subdirectory") else ""
        return f"{name} @ {vcs.get('type', 'git')}+{vcs['url']}@{vcs['commit-id']}{sub}", None
    files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
    hashes = " ".join(f"--hash={algorithm}:{value}" for f in files
                      for algorithm, value in sorted((f.get("hashes") or {}).items()))
    if "archive" in package:
        archive = package["archive"]
        url = archive.get("url") or (base / archive["path"]).resolve().as_uri()
        hashes = " ".join(f"--hash={a}:{v}" for a, v in sorted(archive["hashes"].items()))
        return f"{name} @ {url} {hashes}", None
    if not hashes or "version" not in package:
        raise SpecError(f"{name}: no version or file hashes", file=shown,
                        hint="export the lock again (uv export --format pylock.toml)")
    return f"{name}=={package['version']} {hashes}", None


# -- shared ------------------------------------------------------------------------------


def _with_marker(line: str, marker: str | None, selection: Selection) -> str:
    """`line` with its environment marker, clauses on extras and dependency groups decided
    here (the installer knows neither), as markers that are always true or always false."""
    if not marker:
        return line
    requirement, _, hashes = line.partition(" --hash=")
    hashes = f" --hash={hashes}" if hashes else ""
    return f"{requirement} ; {_SELECTOR.sub(lambda m: _decide(m, selection), marker)}{hashes}"


def _decide(match: re.Match, selection: Selection) -> str:
    if match[4]:  # 'name' in extras / dependency_groups
        chosen = selection.extras if match[4] == "extras" else selection.groups
        present = match[2] in chosen
        return _TRUE if present == (match[3] == "in") else _FALSE
    present = match[7] in selection.extras  # extra == "name"
    return _TRUE if present == (match[5] == "==") else _FALSE


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _shown(path: Path, repo: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(repo).as_posix() if resolved.is_relative_to(repo) else path.name
