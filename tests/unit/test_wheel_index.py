"""builder.wheel_index: judging a release from an index's file list (made-up lists), and
reading a simple index page served here."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from builder.runtimes import make_target
from builder.wheel_index import _allows, _key, describe, index_url, judge, project_files

PY311 = make_target("python3.11")
PY311_ARM = make_target("python3.11", "arm64")
PY312_ARM = make_target("python3.12", "arm64")


def files(*names, requires=None):
    return [(name, requires) for name in names]


NUMPYISH = files(
    "fastnum-2.2.6.tar.gz",
    "fastnum-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "fastnum-2.3.4.tar.gz",
    "fastnum-2.3.4-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    "fastnum-2.3.4-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    "fastnum-2.3.4-cp312-cp312-manylinux_2_27_aarch64.whl",
    "fastnum-2.4.0rc1-cp311-cp311-manylinux_2_17_x86_64.whl")


def test_wheels_only_a_newer_glibc_loads_are_a_verdict_with_what_would_work():
    verdict = judge("fastnum", "==2.3.4", PY311, NUMPYISH)
    assert (verdict.version, verdict.glibc, verdict.loadable) == ("2.3.4", (2, 27), False)
    assert verdict.newest_loadable == "2.2.6"  # the release candidate is not offered
    assert verdict.runtimes == ("python3.12",)
    message, hint = describe(verdict, PY311)
    assert message == ("package fastnum 2.3.4 needs compiling for the target: its wheels for "
                       "Python 3.11 x86_64 need glibc 2.27 (manylinux_2_27) and python3.11 has "
                       "glibc 2.26; the newest release with a wheel python3.11 loads is 2.2.6; "
                       "python3.12 would take 2.3.4")
    assert hint == "pin fastnum==2.2.6 or use a python3.12 runtime"


def test_a_range_takes_its_newest_final_release():
    assert judge("fastnum", ">=2.3.0", PY311, NUMPYISH).version == "2.3.4"
    assert judge("fastnum", "", PY311, NUMPYISH).version == "2.3.4"


@pytest.mark.parametrize(("listing", "spec"), [
    (files("purething-1.0.tar.gz"), ""),                          # an sdist only: may be pure
    (files("speedy-1.1.1.tar.gz", "speedy-1.1.1-cp39-cp39-manylinux1_x86_64.whl"), ""),
    (files("fastnum-2.3.4.tar.gz"), "==9.9"),                     # nothing in the range
])
def test_building_may_help_or_the_list_cannot_tell(listing, spec):
    # speedy has wheels for other Pythons only: its sdist may build without its C code.
    assert judge(listing[0][0].split("-")[0], spec, PY311, listing) is None


def test_a_wheel_the_target_loads_but_uv_cannot_select_is_loadable():
    listing = files("tabular-3.0.0-cp311-cp311-manylinux_2_24_x86_64.whl")
    verdict = judge("tabular", "==3.0.0", PY311, listing, selectable=(2, 17))
    assert verdict.loadable and verdict.glibc == (2, 24)
    listing += files("tabular-3.0.0-cp311-cp311-manylinux2014_x86_64.whl")
    assert judge("tabular", "==3.0.0", PY311, listing, selectable=(2, 17)) is None


def test_requires_python_and_the_cpu_are_respected():
    listing = files("fastnum-2.5.0-cp312-cp312-manylinux_2_28_x86_64.whl", requires=">=3.12") + \
        files("fastnum-2.2.6-cp311-cp311-manylinux2014_x86_64.whl", requires=">=3.10")
    # 2.5 is not for 3.11, and uv could have taken 2.2.6: nothing to explain
    assert judge("fastnum", "", PY311, listing, selectable=(2, 17)) is None
    assert judge("fastnum", "==2.3.4", PY311_ARM, NUMPYISH) is None  # no cp311 aarch64 wheel
    assert judge("fastnum", "==2.3.4", PY312_ARM, NUMPYISH, selectable=(2, 34)) is None
    listing = files("fastnum-2.3.4-cp311-cp311-manylinux_2_27_aarch64.whl")
    verdict = judge("fastnum", "==2.3.4", PY311_ARM, listing)
    assert verdict.glibc == (2, 27) and verdict.newest_loadable is None and not verdict.runtimes
    assert describe(verdict, PY311_ARM)[1] == "build inside Lambda"


@pytest.mark.parametrize(("spec", "version", "allowed"), [
    ("==2.3.4", "2.3.4", True), ("==2.3.4", "2.3.40", False), (">=2.0.0,<2.3.4", "2.3.3", True),
    (">=2.0.0,<2.3.4", "2.3.4", False), ("!=1.0", "1.0.0", False), ("==2.*", "2.9", True),
    ("==2.*", "3.0", False), ("~=2.2", "2.9", True), ("~=2.2", "3.0", False),
    (">=3.10", "3.11", True), (">=3.12", "3.11", False), ("<2 | >3", "2.5", True),
])
def test_ranges(spec, version, allowed):
    assert _allows(spec, version) is allowed


def test_version_order():
    ordered = ["1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.1", "2.0"]
    assert sorted(reversed(ordered), key=_key) == ordered


def test_the_index_is_the_one_the_installer_reads():
    assert index_url({}) == "https://pypi.org/simple"
    assert index_url({"PIP_INDEX_URL": "https://p.example/simple"}) == "https://p.example/simple"
    assert index_url({"UV_DEFAULT_INDEX": "https://u.example/simple",
                      "PIP_INDEX_URL": "https://p.example/simple"}) == "https://u.example/simple"
    assert index_url({"UV_DEFAULT_INDEX": "https://u.example/simple"},
                     "https://r.example/simple") == "https://r.example/simple"


@pytest.fixture
def index():
    pages = {
        "/simple/jsonpkg/": ("application/vnd.pypi.simple.v1+json", json.dumps({"files": [
            {"filename": "jsonpkg-1.0.tar.gz", "requires-python": ">=3.9"},
            {"filename": "jsonpkg-0.9.tar.gz", "yanked": "broken"}]})),
        "/simple/htmlpkg/": ("text/html", '<a href="../../f/htmlpkg-1.0-py3-none-any.whl#sha256=1" '
                             'data-requires-python="&gt;=3.8">x</a><a href="htmlpkg-0.1.tar.gz" '
                             'data-yanked="">y</a>'),
    }
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Authorization"))
            kind, body = pages.get(self.path, ("text/plain", None))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://user:pw@127.0.0.1:{server.server_port}/simple", seen
    server.shutdown()


def test_project_files_reads_json_and_html_pages_without_yanked_files(index):
    url, seen = index
    assert project_files(url, "jsonpkg") == [("jsonpkg-1.0.tar.gz", ">=3.9")]
    assert project_files(url, "htmlpkg") == [("htmlpkg-1.0-py3-none-any.whl", ">=3.8")]
    assert project_files(url, "missing") is None
    assert project_files("file:///srv/index", "jsonpkg") is None
    assert seen[0] == "Basic dXNlcjpwdw=="  # the URL's credentials, as a header
