"""Headless Chromium driven over the DevTools protocol with every outside request blocked and counted.

A page is served from a folder by an HTTP server on 127.0.0.1. Chromium intercepts each request the page
makes (the Fetch domain): one to the loopback server continues, any other is failed and recorded, so a
test can assert that none was attempted. Host resolution is also mapped to nothing except 127.0.0.1, so
a request that escaped interception could still not leave the machine. Then `evaluate` runs JavaScript in
the page (computed styles, DOM built by scripts, SVG geometry).
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import urlopen

from websockets.sync.client import connect

LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "devtools"}


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports what it needs
        pass


@dataclass
class LoadedPage:
    url: str
    outside_requests: list[str] = field(default_factory=list)
    local_requests: list[str] = field(default_factory=list)
    failed_local: list[str] = field(default_factory=list)


class OfflineBrowser:
    """`with OfflineBrowser(root, tmp) as b: page = b.open("report/index.html"); b.evaluate("...")`."""

    def __init__(self, root: Path, work: Path):
        self.root, self.work = root, work

    def __enter__(self) -> OfflineBrowser:
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        profile = self.work / "chromium-profile"
        self.proc = subprocess.Popen(
            [
                chromium_path(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port within 60 s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        self._closing = ExitStack()
        self.ws = self._closing.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=2**26, open_timeout=30)
        )
        self._id = 0
        self._pending: list[dict] = []
        self._send("Page.enable")
        self._send("Runtime.enable")
        self._send("Fetch.enable", patterns=[{"urlPattern": "*"}])
        return self

    def __exit__(self, *exc) -> None:
        self._closing.close()
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.server.shutdown()
        self.server.server_close()

    def open(self, path: str, settle_s: float = 1.5, timeout_s: float = 60) -> LoadedPage:
        """Navigate to `path` under the served folder; return once loaded and quiet for `settle_s`."""
        page = LoadedPage(self.base + path)
        self._send("Page.navigate", url=page.url, handle=lambda msg: self._on_event(msg, page))
        loaded_at = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = self._receive(timeout=0.2)
            if msg is not None:
                if msg.get("method") == "Page.loadEventFired":
                    loaded_at = time.monotonic()
                self._on_event(msg, page)
            elif loaded_at is not None and time.monotonic() - loaded_at > settle_s:
                return page
        raise TimeoutError(f"{page.url} did not finish loading in {timeout_s} s")

    def evaluate(self, expression: str):
        """The JSON value of `expression` evaluated in the page (await-ed if it is a promise)."""
        result = self._send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _on_event(self, msg: dict, page: LoadedPage) -> None:
        if msg.get("method") == "Fetch.requestPaused":
            params = msg["params"]
            url = params["request"]["url"]
            parsed = urlparse(url)
            if parsed.scheme in LOCAL_SCHEMES or parsed.hostname == "127.0.0.1":
                page.local_requests.append(url)
                self._send("Fetch.continueRequest", requestId=params["requestId"], wait=False)
            else:
                page.outside_requests.append(url)
                self._send(
                    "Fetch.failRequest",
                    requestId=params["requestId"],
                    errorReason="BlockedByClient",
                    wait=False,
                )
        elif msg.get("method") == "Network.loadingFailed":
            page.failed_local.append(json.dumps(msg["params"]))

    def _send(self, method: str, *, wait: bool = True, handle=None, **params) -> dict:
        self._id += 1
        sent = self._id
        self.ws.send(json.dumps({"id": sent, "method": method, "params": params}))
        if not wait:
            return {}
        while True:
            msg = self._receive(timeout=60)
            if msg is None:
                raise TimeoutError(f"no answer to {method}")
            if msg.get("id") == sent:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if handle is not None:
                handle(msg)
            elif msg.get("method") == "Fetch.requestPaused":  # never leave a request hanging
                self._pending.append(msg)

    def _receive(self, timeout: float) -> dict | None:
        if self._pending:
            return self._pending.pop(0)
        try:
            return json.loads(self.ws.recv(timeout=timeout))
        except TimeoutError:
            return None
