"""Requirement files, rewritten so that an installer can run them from a temporary directory.

`-r`/`-c` includes, `--find-links`, index paths and local paths become absolute and must
resolve inside the repository (a symlink or `../` may not reach the builder's own files);
includes are files, never URLs; options are spelled as pip spells them (lowercase) and
environment variables are not expanded. Anything else is a SpecError naming the file (as
the repository has it) and the line. Editables become regular installs; git requirements
are fetched by lambda3 itself (Lambda has no git) and replaced by their checkout.
`requirement_inputs` lists every file in the repository that decides what is installed.
The token for the source host goes only to that fetch, and only over https to that host:
never to a child process, file or message.
"""
from __future__ import annotations

import configparser
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from builder.errors import InstallError, Lambda3Error, SpecError
from builder.redact import REDACTOR

log = logging.getLogger(__name__)

FetchVcs = Callable[[str, "str | None", Path, "str | None"], Path]

_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVES = (".whl", ".tar.gz", ".zip")
_INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")
_LOCATION_OPTIONS = ("-f", "--find-links", "-i", "--index-url", "--extra-index-url")
_KNOWN_OPTIONS = (*_INCLUDE_OPTIONS, *_LOCATION_OPTIONS, "-e", "--editable")
_OPTION = re.compile(r"^(--[A-Za-z][A-Za-z-]*|-[A-Za-z])(?:\s*=\s*|\s+|(?=[^\s=]))?(.*)$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_ENV_VARIABLE = re.compile(r"\$\{[A-Za-z0-9_]+\}")
MAX_REQUIREMENT_FILES = 100  # files in one closure of includes
MAX_REQUIREMENTS_BYTES = 1 << 20  # one requirements file
_NAMED_URL = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)(.*)$")


def normalise(name: str) -> str:
    """PEP 503 name normalisation: `Foo_Bar.baz` -> `foo-bar-baz`."""
    return re.sub(r"[-_.]+", "-", name).lower()


class RequirementFiles:
    """Rewrites requirement files into `work` as the module docstring says, git requirements
    fetched with `fetch_vcs` (builder.source by default). Collects the names required."""

    def __init__(self, repo_root: Path, work: Path, *, token: str | None,
                 source_host: str | None, fetch_vcs: FetchVcs | None = None) -> None:
        self.work = work
        self.repo_root = repo_root.resolve()
        self.names: set[str] = set()        # normalised names the files require
        self.local_names: set[str] = set()  # those installed from a path or a git checkout
        self.origins: dict[str, tuple[str, int]] = {}  # name -> (file shown, line) naming it
        self.local_paths: dict[str, Path] = {}  # local name -> the folder or file it is
        self.options = LineOptions()  # per-requirement options, as installer-wide ones
        self.index_url: str | None = None  # an `--index-url` the files give
        self._roots = [self.repo_root]
        self._token, self._source_host = token, source_host
        self._fetch_vcs = fetch_vcs or _fetch_source
        self.inputs: dict[Path, None] = {}  # files and folders read, in order
        self._written: dict[Path, Path] = {}
        self._fetched: dict[tuple[str, str | None], Path] = {}

    def rewrite(self, path: Path, *, collect: bool = True) -> Path:
        source = self._inside(path, None, None, self.shown(path))
        if source not in self._written:
            if len(self._written) >= MAX_REQUIREMENT_FILES:
                raise SpecError(f"more than {MAX_REQUIREMENT_FILES} requirement files are "
                                "included", file=self.shown(source))
            self.inputs.setdefault(source, None)
            out = self.work / f"requirements-{len(self._written)}.txt"
            self._written[source] = out
            lines = [self._line(text, source, number, collect)
                     for number, text in _logical_lines(source, self.shown(source))]
            out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return self._written[source]

    def rewrite_generated(self, path: Path, shown: str) -> Path:
        """A requirements file lambda3 wrote outside the repository (a project's export,
        builder.lockfiles): its lines checked and rewritten as the repository's are."""
        out = self.work / f"requirements-{len(self._written)}.txt"
        self._written[Path(path)] = out
        lines = [self._line(text, Path(path), number, True)
                 for number, text in _logical_lines(Path(path), shown)]
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return out

    def translate(self, text: str) -> str:
        """`text` (an installer's output) with the temporary copies named as the user named
        them: `/tmp/.../requirements-0.txt:1:18` becomes `requirements.txt:1`."""
        return self._copies().sub(lambda match: self._named_copy(match, match[0]), text)

    def located(self, text: str) -> tuple[str, int] | None:
        """The first (file shown, line) an installer's output points at, if any."""
        for match in self._copies().finditer(text):
            named = self._named_copy(match, "")
            if named and (match[2] or match[4]):
                shown, _, line = named.rstrip("`").rpartition(":")
                return shown, int(line)
        return None

    def _copies(self) -> re.Pattern:
        return re.compile(rf"(?:{re.escape(str(self.work))}/)?(requirements-\d+\.txt)"
                          r"(?::(\d+)(?::\d+)?|(`? at position (\d+)))?")

    def _named_copy(self, match: re.Match, default: str) -> str:
        source = next((s for s, out in self._written.items() if out.name == match[1]), None)
        if source is None:
            return default
        line = int(match[2]) if match[2] else None
        if match[4]:  # uv counts characters into the copy
            copy = self._written[source].read_text(encoding="utf-8")
            line = copy[:int(match[4])].count("\n") + 1
        if line is None:
            return self.shown(source)
        return f"{self.shown(source)}:{self._original_line(source, line)}" + (
            "`" if match[3] and match[3].startswith("`") else "")

    def _original_line(self, source: Path, line: int) -> int:
        """The line of `source` that line `line` of its copy came from (one per logical line)."""
        try:
            lines = _logical_lines(source, self.shown(source))
        except SpecError:
            return line
        return lines[line - 1][0] if 0 < line <= len(lines) else line

    def shown(self, path: Path) -> str:
        """How a requirement file is named in messages: relative to the repository."""
        resolved = _resolve(Path(path))
        if resolved is not None and resolved.is_relative_to(self.repo_root):
            return resolved.relative_to(self.repo_root).as_posix()
        return Path(path).name

    def _line(self, line: str, source: Path, number: int, collect: bool) -> str:
        if _ENV_VARIABLE.search(line):
            raise _error(f"{_ENV_VARIABLE.search(line)[0]}: environment variables are not "
                         "expanded in requirement files built by lambda3", self.shown(source),
                         number, hint="write the value itself")
        match = _OPTION.match(line)
        if not match:
            return self._requirement(line, source, number, collect)
        option, value = match[1], match[2].strip()
        if option not in _KNOWN_OPTIONS and option.lower() in _KNOWN_OPTIONS:
            raise _error(f"{option} is not an option (options are case-sensitive)",
                         self.shown(source), number, hint=f"write {option.lower()}")
        if option in _INCLUDE_OPTIONS:
            return self._include(option, value, source, number, collect)
        if option in ("-e", "--editable"):
            log.info("%s:%d: installing %s as a regular (not editable) package",
                     self.shown(source), number, REDACTOR(value))
            return self._requirement(value, source, number, collect)
        if option in _LOCATION_OPTIONS:
            if option in ("-i", "--index-url") and _SCHEME.match(value):
                self.index_url = value
            return self._location(option, value, line, source, number)
        return line

    def _include(self, option: str, value: str, source: Path, number: int,
                 collect: bool) -> str:
        if _SCHEME.match(value):
            raise _error(f"{option} {REDACTOR(value)!r}: an include must be a file in the "
                         "repository, not a URL", self.shown(source), number,
                         hint="copy the file into the repository and include it by path")
        path = self._path(value, source, number)
        if not path.is_file():
            raise _error(f"{option} {value!r}: no such file in the repository",
                         self.shown(source), number)
        nested = self.rewrite(path, collect=collect and option in ("-r", "--requirement"))
        return f"{option} {nested}"

    def _location(self, option: str, value: str, line: str, source: Path, number: int) -> str:
        """An index or find-links location: a local path or file: URL made absolute (and
        kept inside the repository); other URLs as written."""
        if value.lower().startswith("file:"):
            return f"{option} {self._path(_file_url_path(value), source, number).as_uri()}"
        if _SCHEME.match(value):
            return line
        return f"{option} {self._path(value, source, number)}"

    def _requirement(self, line: str, source: Path, number: int, collect: bool) -> str:
        line, options = _split_options(line)
        written = self._named(line, source, number, collect)
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*(?=\s*(?:\[|@|[<>=!~;]|$))", written)
        if name and collect:
            self.origins.setdefault(normalise(name[0]), (self.shown(source), number))
        hashes = self.options.take(options, name[0] if name else None, self.shown(source),
                                   number)
        return " ".join([written, *hashes])

    def _named(self, line: str, source: Path, number: int, collect: bool) -> str:
        named = _NAMED_URL.match(line)
        if named:
            name, extras, location, rest = named.groups()
            if collect:
                self.names.add(normalise(name))
            if "://" in location and not location.lower().startswith(("file:", *_VCS_PREFIXES)):
                return line
            self.local_names.add(normalise(name))
            path = self._local(location, source, number)
            self.local_paths[normalise(name)] = path
            return f"{name}{extras or ''} @ {path.as_uri()}{rest}"
        if line.lower().startswith(_VCS_PREFIXES) or _looks_like_path(line):
            location, _, rest = line.partition(" ")
            rest = f" {rest}" if rest else ""
            extras = _trailing_extras(location.split("#", 1)[0])
            if extras:
                location = location.replace(extras, "", 1)
            path = self._local(location, source, number)
            egg = re.search(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)", location)
            if not egg and path.is_file() and path.name.endswith(".whl"):
                if collect and project_name(path):
                    self.names.add(normalise(project_name(path)))
                return f"{path}{extras}{rest}"  # a wheel: installed as it is, nothing built
            name = egg[1] if egg else project_name(path)
            if not name:
                if any((path / f).is_file() for f in ("setup.py", "setup.cfg", "pyproject.toml")):
                    raise _error(f"{location!r}: cannot tell the name of the project in this "
                                 "folder (no pyproject.toml [project] name, setup.cfg "
                                 "[metadata] name or setup.py name=)", self.shown(source),
                                 number, hint=f"write it as `NAME @ {location}`")
                return f"{path}{extras}{rest}"
            self.local_names.add(normalise(name))
            self.local_paths[normalise(name)] = path
            if collect:
                self.names.add(normalise(name))
            return f"{name}{extras} @ {path.as_uri()}{rest}"
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if name and collect:
            self.names.add(normalise(name[0]))
        return line

    def _local(self, location: str, source: Path, number: int) -> Path:
        """A git URL fetched to a checkout, or a local path made absolute."""
        if location.lower().startswith(_VCS_PREFIXES):
            return self._checkout(location, source, number)
        location = location.split("#", 1)[0]
        if location.lower().startswith("file:"):
            location = _file_url_path(location)
        return self._path(location, source, number)

    def _path(self, value: str, source: Path, number: int) -> Path:
        path = self._inside(source.parent / value, source, number, value)
        if path not in self.inputs and path.is_dir():
            link = _link_outside(path, self._roots)
            if link is not None:
                raise _error(f"{value!r}: {link.relative_to(path).as_posix()} is a symlink to "
                             "outside the repository", self.shown(source), number,
                             hint="an installer would copy what it points to")
        self.inputs.setdefault(path, None)
        return path

    def _inside(self, path: Path, source: Path | None, number: int | None, written: str
                ) -> Path:
        """The real path of `path`, or SpecError when it is outside the repository (and
        the checkouts of git requirements); `written` is how the file wrote it."""
        file = self.shown(source) if source else None
        resolved = _resolve(Path(path))
        if resolved is None:
            raise _error(f"{written!r} is a symlink loop", file, number)
        if not any(resolved.is_relative_to(root) for root in self._roots):
            raise _error(f"{written!r} is outside the repository", file, number,
                         hint="requirement files, includes and local paths must be inside "
                              "the repository")
        return resolved

    def _token_may_go_to(self, url: str) -> bool:
        """The source host's token goes to that host only, over https (or plain http to
        this machine, as a local git server is)."""
        parts = urlsplit(url)
        if not self._source_host or _host(parts.netloc) != _host(self._source_host):
            return False
        if parts.username:
            return False  # the requirement carries its own credentials
        return parts.scheme == "https" or parts.hostname in ("127.0.0.1", "localhost", "::1")

    def _checkout(self, location: str, source: Path, number: int) -> Path:
        if not location.startswith(("git+https://", "git+http://")):
            raise InstallError(f"unsupported VCS requirement {REDACTOR(location.split('#')[0])}",
                               file=self.shown(source), line=number,
                               hint="Lambda has no git, ssh or other VCS tools: use "
                                    "git+https:// URLs (lambda3 fetches them) or an index")
        url, ref, subdirectory = _parse_git(location)
        key = (url, ref)
        if key not in self._fetched:
            token = self._token if self._token_may_go_to(url) else None
            if self._fetch_vcs is not _no_fetch:
                log.info("%s:%d: fetching %s@%s", self.shown(source), number, REDACTOR(url),
                         ref or "HEAD")
            workdir = self.work / f"vcs-{len(self._fetched)}"
            workdir.mkdir()
            try:
                root = self._fetch_vcs(url, ref, workdir, token)
            except Lambda3Error as err:
                raise InstallError(f"could not fetch {REDACTOR(url)}@{ref or 'HEAD'}: "
                                   f"{err.message}", file=self.shown(source), line=number) from err
            self._fetched[key] = Path(root).resolve()
            self._roots.append(self._fetched[key])
        checkout = self._fetched[key]
        path = (checkout / subdirectory).resolve() if subdirectory else checkout
        if not path.is_relative_to(checkout):
            raise InstallError(f"subdirectory {subdirectory} is outside the checkout",
                               file=self.shown(source), line=number)
        return path



def _fetch_source(url: str, ref: str | None, workdir: Path, token: str | None) -> Path:
    from builder.source import fetch_source

    return fetch_source(url, ref, workdir, token=token).root


class RecordingFetch:
    """A `FetchVcs` that fetches each git requirement once (builder.source, into `workdir`)
    and records the commit its ref resolved to: the dependency cache key holds the
    commits, and the install reuses the same checkouts."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.commits: dict[str, str | None] = {}
        self._roots: dict[tuple[str, str | None], Path] = {}

    def __call__(self, url: str, ref: str | None, workdir: Path, token: str | None) -> Path:
        if (url, ref) not in self._roots:
            from builder.source import fetch_source

            checkout = fetch_source(url, ref, self.workdir, token=token)
            self._roots[(url, ref)] = checkout.root
            self.commits[f"{url}@{ref or 'HEAD'}"] = checkout.commit
        return self._roots[(url, ref)]


def _no_fetch(url: str, ref: str | None, workdir: Path, token: str | None) -> Path:
    return workdir  # listing inputs: a git requirement is its line, not its files


def requirement_inputs(files: Sequence[Path], repo_root: Path, *,
                       fetch_vcs: FetchVcs | None = None, token: str | None = None,
                       source_host: str | None = None) -> list[Path]:
    """`files`, every file they include and every local path they install from (wheels,
    package folders, --find-links and index folders), resolved, first seen first. Checked
    as `RequirementFiles.rewrite` checks them (SpecError); git requirements are fetched
    only with a `fetch_vcs` (a `RecordingFetch` learns their commits)."""
    with tempfile.TemporaryDirectory(prefix="lambda3-inputs-") as work:
        reader = RequirementFiles(Path(repo_root), Path(work), token=token,
                                  source_host=source_host, fetch_vcs=fetch_vcs or _no_fetch)
        for path in files:
            reader.rewrite(Path(path))
        return [path for path in reader.inputs if path.is_relative_to(reader.repo_root)]


def _error(message: str, file: str | None, line: int | None, *, hint: str | None = None
           ) -> SpecError:
    return SpecError(message, file=file, line=line, hint=hint)


def _resolve(path: Path) -> Path | None:
    """The real path (what does not exist yet judged lexically), None for a symlink loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop: RuntimeError before Python 3.13, OSError after
        return None


def _link_outside(folder: Path, roots: Sequence[Path]) -> Path | None:
    """The first symlink under `folder` that resolves outside `roots` (or loops)."""
    for directory, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(dirnames + filenames):
            child = Path(directory, name)
            if child.is_symlink():
                real = _resolve(child)
                if real is None or not any(real.is_relative_to(root) for root in roots):
                    return child
    return None


def _file_url_path(url: str) -> str:
    """The local path of a file: URL, percent-escapes decoded as the installer decodes them."""
    return unquote(urlsplit(url).path)


def _trailing_extras(location: str) -> str:
    """`[a,b]` at the end of `location` ("" when none): from the first `[` after the
    previous `]`, found without backtracking."""
    if not location.endswith("]"):
        return ""
    start = location.find("[", location.rfind("]", 0, len(location) - 1) + 1)
    return location[start:] if start != -1 else ""


def _comment_free(raw: str) -> str:
    """`raw` without a `#` comment (one at the start or after whitespace), in linear time."""
    index = raw.find("#")
    while index != -1:
        if index == 0 or raw[index - 1].isspace():
            return raw[:index].rstrip()
        index = raw.find("#", index + 1)
    return raw



def _logical_lines(path: Path, shown: str) -> list[tuple[int, str]]:
    """(line number, text) with comments dropped and `\\` continuations joined, as pip does."""
    lines, pending, start = [], "", 0
    for number, raw in enumerate(_read(path, shown).splitlines(), start=1):
        text = _comment_free(raw)
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1]
            continue
        text, pending = (pending + text).strip(), ""
        if text:
            lines.append((start, text))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def _read(path: Path, shown: str) -> str:
    try:
        if path.stat().st_size > MAX_REQUIREMENTS_BYTES:
            raise SpecError(f"larger than {MAX_REQUIREMENTS_BYTES} bytes", file=shown)
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                        file=shown) from None
    except OSError as exc:
        raise SpecError(f"cannot be read: {exc.strerror}", file=shown) from None


_PIP_ONLY_OPTIONS = ("--global-option", "--install-option", "--build-option")
_CONFIG_OPTIONS = ("--config-settings", "--config-setting", "-C")


@dataclass
class LineOptions:
    """Options pip accepts after a requirement, kept as installer-wide ones (uv takes none
    on a requirement line but `--hash`): `--no-binary`/`--only-binary` names (pip applies
    them to the whole install too, as these do) with the line that gave them, and
    `--config-settings` for the package of that line. `--hash` stays on its line."""

    no_binary: dict[str, tuple[str, int]] = field(default_factory=dict)
    only_binary: dict[str, tuple[str, int]] = field(default_factory=dict)
    config_settings: list[tuple[str, str]] = field(default_factory=list)  # (name, KEY=VALUE)

    def take(self, options: list[tuple[str, str]], name: str | None, shown: str,
             number: int) -> list[str]:
        """Record `options` of one line; what stays on it (`--hash=...`)."""
        kept = []
        for option, value in options:
            if option == "--hash":
                kept.append(f"--hash={value}")
            elif option in ("--no-binary", "--only-binary"):
                self._binary(option, value, shown, number)
            elif option in _CONFIG_OPTIONS and name and "=" in value:
                self.config_settings.append((normalise(name), value))
            elif option in _CONFIG_OPTIONS:
                raise _error(f"{option} {value!r}: needs KEY=VALUE on a line that names its "
                             "package", shown, number, hint="write NAME ... --config-settings "
                             "KEY=VALUE")
            elif option in _PIP_ONLY_OPTIONS:
                raise _error(f"{option} is not supported (pip deprecated it; uv has no such "
                             "option)", shown, number, hint="use --config-settings KEY=VALUE")
            else:
                raise _error(f"{option} is not an option pip accepts after a requirement",
                             shown, number, hint="put installer options on a line of their own")
        return kept

    def _binary(self, option: str, value: str, shown: str, number: int) -> None:
        chosen = self.no_binary if option == "--no-binary" else self.only_binary
        for item in filter(None, (part.strip() for part in value.split(","))):
            if item == ":none:":
                continue
            if item == ":all:":
                raise _error(f"{option}=:all: on a requirement line applies to every "
                             "package", shown, number, hint=f"name the packages: {option}=NAME")
            if item.startswith(":") or item.endswith(":"):
                log.warning("%s:%d: %s=%s names no package (pip reads `%s` as a package name "
                            "and ignores it); write %s=%s to apply it", shown, number, option,
                            item, item, option, item.strip(":"))
                continue
            chosen.setdefault(normalise(item), (shown, number))


def _split_options(line: str) -> tuple[str, list[tuple[str, str]]]:
    """A requirement line split as pip splits it: the requirement, then the options from
    the first word starting with `-`, as (option, value) pairs."""
    words = line.split()
    first = next((i for i, word in enumerate(words) if word.startswith("-")), None)
    if first is None:
        return line, []
    options, rest = [], words[first:]
    while rest:
        word = rest.pop(0)
        option, equals, value = word.partition("=")
        if word.startswith("-C") and len(word) > 2:
            option, equals, value = "-C", "=", word[2:]
        elif not equals and rest and not rest[0].startswith("-"):
            value = rest.pop(0)
        options.append((option, value))
    return " ".join(words[:first]), options


def project_name(path: Path) -> str | None:
    """The name a local project or archive declares, read without building anything: a
    wheel's or sdist's file name, pyproject.toml's [project] name, setup.cfg's [metadata]
    name, or a literal `name="..."` in setup.py; None when none says."""
    if path.is_file():
        match = re.match(r"^([^-]+)-.*\.whl$|^(.+?)-\d[^-]*\.(?:tar\.gz|zip)$", path.name)
        return (match[1] or match[2]) if match else None
    pyproject = _small_text(path / "pyproject.toml")
    section = re.search(r"^\[(?:project|tool\.poetry)\]\s*$(.*?)(?=^\[|\Z)", pyproject,
                        re.M | re.S)
    found = section and re.search(r"^name\s*=\s*[\"']([^\"']+)[\"']", section[1], re.M)
    if found:
        return found[1]
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(_small_text(path / "setup.cfg"))
        if parser.get("metadata", "name", fallback=""):
            return parser.get("metadata", "name").strip()
    except configparser.Error:
        pass
    found = re.search(r"\bname\s*=\s*[\"']([A-Za-z0-9][A-Za-z0-9._-]*)[\"']",
                      _small_text(path / "setup.py"))
    return found[1] if found else None


def _small_text(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_REQUIREMENTS_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def _looks_like_path(line: str) -> bool:
    first = line.split(" ", 1)[0]
    is_file_url = first.lower().startswith("file:")
    if "://" in first and not is_file_url:
        return False
    return first.startswith((".", "/")) or is_file_url or first.endswith(_ARCHIVES) or (
        "/" in first and not _NAMED_URL.match(line))


def _parse_git(location: str) -> tuple[str, str | None, str | None]:
    """`git+https://host/o/r.git@ref#egg=x&subdirectory=d` -> (https URL, ref, subdirectory)."""
    url, _, fragment = location.removeprefix("git+").partition("#")
    parts = urlsplit(url)
    path, ref = parts.path, None
    if "@" in path:
        path, ref = path.rsplit("@", 1)
    subdirectory = re.search(r"(?:^|&)subdirectory=([^&]+)", fragment)
    return (parts._replace(path=path, query="", fragment="").geturl(), ref or None,
            subdirectory[1] if subdirectory else None)


def _host(netloc: str) -> str:
    """`user:pw@Host:443` or `https://host/` -> `host:443` (lowercase, no credentials)."""
    if "://" in netloc:
        netloc = urlsplit(netloc).netloc
    return netloc.rsplit("@", 1)[-1].strip("/").lower()

