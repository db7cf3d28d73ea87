"""A real headless Chromium for page tests, driven by its DevTools protocol over a pipe.

`--remote-debugging-pipe` makes Chromium read commands from its fd 3 and write replies and
events to its fd 4, as JSON texts each ended by a NUL byte: no port, no WebSocket library.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

INSTALL = "apt-get update && apt-get install -y chromium"
OPT_IN = "ANNOUNCER_INSTALL_CHROMIUM"
# What works on these machines: no sandbox as root, and none of Chromium's own calls home
# (the network is closed; without these flags it keeps trying).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars"]


def find_or_install_chromium() -> tuple[str | None, str]:
    """Chromium's path, installing Debian's package as root under CI=true or ANNOUNCER_INSTALL_CHROMIUM=1;
    else None and the reason to skip."""
    found = shutil.which("chromium")
    if found:
        return found, ""
    allowed = os.environ.get("CI") == "true" or os.environ.get(OPT_IN) == "1"
    if not (allowed and hasattr(os, "geteuid") and os.geteuid() == 0):
        return None, (f"headless Chromium is not installed: run `{INSTALL}` as root, or set {OPT_IN}=1 "
                      "(as root) to let the tests install it")
    done = subprocess.run(["sh", "-c", INSTALL], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("chromium")
    if done.returncode != 0 or not found:
        return None, f"`{INSTALL}` failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
    return found, ""


def _high_fd(fd: int) -> int:
    """The same pipe end on a descriptor above 9, so that moving it to 3 or 4 in the child clobbers nothing."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium process; `open_page` gives pages to drive. Use as a context manager."""

    def __init__(self, executable: str, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="announcer-chromium-")
        to_child, self._to_browser = (_high_fd(fd) for fd in os.pipe())
        self._from_browser, from_child = (_high_fd(fd) for fd in os.pipe())

        def wire() -> None:  # in the child: its fd 3 reads our commands, its fd 4 writes its replies
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile.name}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=wire)
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Ask Chromium to quit, and kill it if it does not; close the pipes, remove the profile."""
        try:
            self.send("Browser.close")
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self.profile.cleanup()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        while True:
            message = self._read()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, session: str | None = None) -> dict[str, Any]:
        """The first event of that name (for that page) not yet taken."""
        while True:
            for message in self.events:
                if message["method"] == event and message.get("sessionId") == session:
                    self.events.remove(message)
                    return message.get("params", {})
            message = self._read()
            if "method" in message:
                self.events.append(message)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError(f"Chromium said nothing for {self.timeout:.0f} s")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium closed its pipe (exit code {self.process.poll()})")
            self._buffer += chunk
        text, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(text)

    def open_page(self, url: str, width: int, height: int = 800) -> Page:
        """A new tab `width` CSS pixels wide, loaded from `url` (and its load event fired)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Network.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired", session)
        return page


class Page:
    """One tab of a Browser."""

    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (run by the test, not by the page)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requested_urls(self) -> list[str]:
        """Every URL the page asked the network for so far."""
        return [event["params"]["request"]["url"] for event in self.browser.events
                if event.get("sessionId") == self.session and event["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> Path:
        """The whole page (not only the window) as a PNG at `path`."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        data = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})["data"]
        path.write_bytes(base64.b64decode(data))
        return path
