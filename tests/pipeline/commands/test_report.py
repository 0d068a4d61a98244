"""`pipeline report` end to end: real sample corpora and token shards through the real commands,
the page's numbers against stats.json, the shards and meta.json read independently, and the page
rendered by a real headless browser (Debian's chromium, installed by install.sh) behind a
recording proxy: the screenshot is not blank and the page asks the network for nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
from pathlib import Path

import matplotlib.image
import numpy as np
import pyarrow as pa
import pytest
from lxml import html as lxml_html

from tests.conftest import script, subprocess_env
from tests.hostile.helpers import one_error, run_script

SOURCES = ("github", "wikipedia")
# Chromium's own traffic, whatever page it shows (component updates, sign-in, network time):
# exact hosts, so a page asking googleapis.com for a font is still caught.
BROWSER_SERVICE_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients2.google.com",
                         "clientservices.googleapis.com", "optimizationguide-pa.googleapis.com",
                         "safebrowsingohttpgateway.googleapis.com", "redirector.gvt1.com", "edgedl.me.gvt1.com"}


def cli(command: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([script(command), *args], cwd=cwd, check=False, capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work folder holding data/corpus/{github,wikipedia} (with dropped documents), their
    token shards, and report.html made from them."""
    work = tmp_path_factory.mktemp("report")
    cli("pipeline", "sample", "--sources", *SOURCES, cwd=work)
    for source in SOURCES:
        cli("pipeline", "run", source, "--keep-dropped", cwd=work)
    cli("tokenizer", "train", "--allow-smaller-vocab", cwd=work)
    cli("tokenizer", "encode", cwd=work)
    cli("pipeline", "report", "all", "--out", "report.html", cwd=work)
    return work


def cell(tree: lxml_html.HtmlElement, **data: str) -> int:
    condition = " and ".join(f"@data-{k}='{v}'" for k, v in data.items())
    found = tree.xpath(f".//td[{condition}]/text()")
    assert len(found) == 1, (data, found)
    return int(found[0].replace(",", ""))


@pytest.mark.slow
def test_the_numbers_on_the_page_are_the_corpus_numbers(built: Path) -> None:
    tree = lxml_html.fromstring((built / "report.html").read_text())
    for source in SOURCES:
        folder = built / "data" / "corpus" / source
        stats = json.loads((folder / "stats.json").read_text())
        assert cell(tree, source=source, field="read") == stats["documents_read"]
        assert cell(tree, source=source, field="kept") == stats["documents_kept"]
        texts = []
        for shard in sorted(folder.glob("shard-*.arrow")):
            with pa.memory_map(str(shard)) as opened:
                texts += pa.ipc.open_stream(opened).read_all().column("text").to_pylist()
        assert cell(tree, source=source, field="kept_bytes") == sum(len(t.encode()) for t in texts)
        section = tree.xpath(f"//h2[@id='{source}']/following-sibling::table[@class='stages'][1]")[0]
        for stage in stats["stages"]:
            assert cell(section, stage=stage["name"], field="in") == stage["in"]
            assert cell(section, stage=stage["name"], field="out") == stage["out"]
            assert cell(section, stage=stage["name"], field="dropped") == sum(stage["dropped"].values())
        meta = json.loads((built / "data" / "tokens" / source / "meta.json").read_text())
        assert cell(tree, source=source, field="available") == meta["splits"]["train"]["tokens"]
    # GitHub's licences are a chart of their own; Wikipedia has an audit residue table.
    assert tree.xpath("//h2[@id='github']/following-sibling::h3[text()='license']")
    assert tree.xpath("//h2[@id='wikipedia']/following-sibling::table[@class='residue']")


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that answers nothing and records every request line (a connection
    closed before it sent a byte asked for nothing: no line)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    received = connection.recv(4096)
                    if not received:
                        continue  # opened and closed with nothing asked (the browser's spare connection)
                    self.requests.append(received.split(b"\r\n", 1)[0].decode(errors="replace"))
                    connection.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()

    def page_requests(self) -> list[str]:
        """The requests other than the browser's own service traffic."""
        return [line for line in self.requests if host_of(line) not in BROWSER_SERVICE_HOSTS]


def host_of(request_line: str) -> str:
    """`CONNECT host:443 HTTP/1.1` or `GET http://host/path HTTP/1.1` -> host."""
    target = request_line.split(" ")[1] if " " in request_line else request_line
    return target.removeprefix("http://").removeprefix("https://").split("/", 1)[0].rsplit(":", 1)[0]


def screenshot(page: Path, out: Path, proxy: RecordingProxy, profile: Path) -> np.ndarray:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on this machine (install.sh installs Debian's chromium; apt-get install chromium)")
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
         "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate",
         f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{proxy.port}",
         "--proxy-bypass-list=<-loopback>", "--window-size=1000,1400", "--virtual-time-budget=3000",
         f"--screenshot={out}", page.as_uri()],
        check=True, capture_output=True, timeout=120, env=subprocess_env())
    return matplotlib.image.imread(str(out))


@pytest.mark.slow
def test_a_headless_browser_draws_the_page_and_it_asks_the_network_for_nothing(built: Path, tmp_path: Path) -> None:
    proxy = RecordingProxy()
    try:
        pixels = screenshot(built / "report.html", tmp_path / "page.png", proxy, tmp_path / "profile")
        requests_of_the_report = proxy.page_requests()
        # The same browser behind the same proxy does report a page that fetches something: the
        # check above can fail.
        fetching = tmp_path / "fetching.html"
        fetching.write_text('<html><body><img src="http://example.org/a.png">text</body></html>')
        screenshot(fetching, tmp_path / "fetching.png", proxy, tmp_path / "profile2")
    finally:
        proxy.close()
    assert requests_of_the_report == []
    assert [host_of(line) for line in proxy.page_requests()] == ["example.org"], proxy.requests
    gray = pixels[..., :3].mean(axis=2)
    assert (gray < 0.9).mean() > 0.02  # text, tables and bars: not a white page
    assert gray.std() > 0.1


def run_report(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script("pipeline"), "report", "c4", "--corpus", "corpus", *args], cwd=cwd,
                          capture_output=True, text=True, env=subprocess_env(), timeout=300)


def test_out_replaces_only_a_page_it_wrote_and_is_checked_before_reading(tmp_path: Path) -> None:
    cli("pipeline", "sample", "--raw", "raw", "--sources", "c4", cwd=tmp_path)
    cli("pipeline", "run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1", "--no-progress",
        cwd=tmp_path)
    (tmp_path / "notes.html").write_text("<html><title>my notes</title></html>")
    (tmp_path / "folder").mkdir()
    refusals = {
        "notes.html": "notes.html: exists and is not a page `pipeline report` wrote; refusing to overwrite it "
                      "(give another --out, or delete it first)",
        "folder": "folder: a folder; --out names the HTML file to write",
        "missing/r.html": "missing: no such folder (for --out missing/r.html)",
        "notes.html/r.html": "notes.html: no such folder (for --out notes.html/r.html)",
    }
    for out, line in refusals.items():
        done = run_report(tmp_path, "--out", out)
        assert (done.returncode, done.stderr.splitlines()) == (2, [f"pipeline: error: {line}"]), out
    assert (tmp_path / "notes.html").read_text() == "<html><title>my notes</title></html>"
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == [] and not (tmp_path / "missing").exists()
    for _ in range(2):  # the second run replaces the page the first wrote
        done = run_report(tmp_path, "--out", "page.html")
        assert done.returncode == 0, done.stderr
    assert lxml_html.parse(str(tmp_path / "page.html")).findtext(".//title") == "herd corpus report: corpus"


def test_an_out_that_is_no_regular_file_is_one_line_and_never_opened_nor_replaced(tmp_path: Path) -> None:
    # Opening a FIFO with no reader to write waits for ever, and the page's rename would replace a
    # FIFO or a device (/dev/null) by a file: both refused before the corpus is read.
    os.mkfifo(tmp_path / "fifo")
    for out, line in [("fifo", "fifo: a FIFO, not an HTML file to write"),
                      ("/dev/null", "/dev/null: a device, not an HTML file to write")]:
        done = run_script("pipeline", "report", "all", "--corpus", "corpus", "--out", out, cwd=tmp_path, timeout=30)
        assert one_error(done, "pipeline") == line
    assert stat.S_ISFIFO((tmp_path / "fifo").lstat().st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["fifo"]


@pytest.mark.slow
def test_documents_removed_since_the_run_are_the_funnels_last_step(tmp_path: Path) -> None:
    """`pipeline remove` after the run: the page says how many, as `pipeline stats` does, and its
    stages and funnel end at what the corpus holds now, read from the shard with pyarrow."""
    cli("pipeline", "sample", "--raw", "raw", "--sources", "c4", cwd=tmp_path)
    cli("pipeline", "run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1", "--no-progress",
        cwd=tmp_path)
    shard = tmp_path / "corpus" / "c4" / "shard-00000.arrow"

    def ids() -> list[str]:
        with pa.memory_map(str(shard)) as opened:
            return pa.ipc.open_stream(opened).read_all().column("id").to_pylist()

    run_kept = ids()
    (tmp_path / "ids.txt").write_text("\n".join(run_kept[:3]) + "\n")
    cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", cwd=tmp_path)
    left = len(ids())
    assert left == len(run_kept) - 3
    cli("pipeline", "report", "c4", "--corpus", "corpus", "--tokens", "no-tokens", "--out", "report.html", cwd=tmp_path)
    page = (tmp_path / "report.html").read_text()
    tree = lxml_html.fromstring(page)
    stats = json.loads((tmp_path / "corpus" / "c4" / "stats.json").read_text())
    assert stats["stages"][-1]["out"] == len(run_kept)  # the run's own funnel ends before the removal
    assert cell(tree, source="c4", field="kept") == left
    summary = tree.xpath("//h2[@id='c4']/following-sibling::p[1]")[0].text_content()
    assert summary.startswith(f"{left} of {stats['documents_read']} documents kept (the run kept {len(run_kept)}; "
                              "3 removed since by pipeline remove, see removals.jsonl), ")
    section = tree.xpath("//h2[@id='c4']/following-sibling::table[@class='stages'][1]")[0]
    removal = {field: cell(section, stage="pipeline remove", field=field) for field in ("in", "out", "dropped")}
    assert removal == {"in": len(run_kept), "out": left, "dropped": 3}
    # The funnel's bars, labelled in matplotlib's SVG comments: the run's stages, then the removal.
    funnel = page[page.index("<!-- input -->"):page.index("<!-- documents through the stages -->")]
    labels = ["input"] + [stage["name"] for stage in stats["stages"]] + ["pipeline remove"]
    counts = [stats["documents_read"]] + [stage["out"] for stage in stats["stages"]] + [left]
    assert re.findall(r"<!-- (.*?) -->", funnel) == labels + [f" {n}" for n in counts]
