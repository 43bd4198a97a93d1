"""A private package index: a PEP 503 simple index over wheels made here, served on
127.0.0.1 behind HTTP basic auth, recording every request it answers."""
from __future__ import annotations

import base64
import hashlib
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

INDEX_USER = "deploy"


def make_wheel(folder: Path, name: str, version: str, code: str) -> Path:
    """A pure-Python wheel of one module `name` holding `code`."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": code,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: lambda3-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},sha256={_digest(text)},{len(text.encode())}" for path, text in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(text: str) -> str:
    raw = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class PrivateIndex:
    folder: Path
    password: str
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, auth user)
    refused: int = 0
    url: str = ""
    user: str = INDEX_USER

    def add(self, name: str, version: str, code: str) -> Path:
        return make_wheel(self.folder, name, version, code)

    @property
    def simple(self) -> str:
        return f"{self.url}/simple/"

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def page(self, path: str) -> bytes | None:
        parts = [p for p in path.split("?")[0].split("/") if p]
        wheels = sorted(self.folder.glob("*.whl"))
        if parts == ["simple"]:
            names = sorted({w.name.split("-")[0].replace("_", "-") for w in wheels})
            return "".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in names).encode()
        if len(parts) == 2 and parts[0] == "simple":
            links = [f'<a href="/files/{w.name}#sha256={_file_hash(w)}">{w.name}</a>\n'
                     for w in wheels
                     if w.name.split("-")[0].replace("_", "-") == parts[1]]
            return "".join(links).encode() if links else None
        if len(parts) == 2 and parts[0] == "files" and (self.folder / parts[1]).is_file():
            return (self.folder / parts[1]).read_bytes()
        return None

    def authorised(self, header: str | None) -> str | None:
        """The user of a right basic-auth header, else None."""
        if not header or not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if (user, password) == (self.user, self.password) else None


def _handler(index: PrivateIndex):
    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
            self.answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self.answer(body=True)

        def answer(self, *, body: bool) -> None:
            user = index.authorised(self.headers.get("Authorization"))
            index.requests.append((self.path, user))
            if user is None:
                index.refused += 1
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="private"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            page = index.page(self.path)
            self.send_response(200 if page is not None else 404)
            self.send_header("Content-Type", "application/octet-stream" if "/files/" in
                             self.path else "text/html")
            self.send_header("Content-Length", str(len(page or b"")))
            self.end_headers()
            if body:
                self.wfile.write(page or b"")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def private_index(tmp_path_factory) -> Iterator[PrivateIndex]:
    """A running index whose password is a canary: tests look for it everywhere."""
    folder = tmp_path_factory.mktemp("index")
    index = PrivateIndex(folder, password="canary-" + hashlib.sha256(str(folder).encode())
                         .hexdigest()[:20])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(index))
    index.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
