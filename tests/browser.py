"""Open a page in headless Chromium through ChromeDriver's WebDriver protocol and report how it rendered.

Used by tests/test_report.py and, from the command line, to take the screenshot in docs/:

    python tests/browser.py reports/fashion-mnist/index.html docs/report.png

Speaks plain WebDriver over HTTP (standard library only), so nothing beyond Debian's ``chromium`` and
``chromium-driver`` packages is needed.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Every <img>: did it load, and how big is it as decoded?
IMAGES_SCRIPT = "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);"


@dataclass
class Rendered:
    title: str
    images: list[tuple[str, bool, int, int]]  # alt text, complete, natural width, natural height
    console_errors: list[str]
    page_height: int
    screenshot: bytes


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def render(page: Path, width: int = 1200) -> Rendered:
    """Load ``page`` (a local file), wait for it, and return what the browser saw plus a full-page PNG."""
    port = _free_port()
    driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base)
        capabilities = {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"},
                        "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            f"--window-size={width},900"]}}
        session = _call(base, "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})["sessionId"]
        url = f"{base}/session/{session}"
        try:
            _call(url, "POST", "/url", {"url": page.resolve().as_uri()})
            _wait_for_load(url)
            title = _call(url, "GET", "/title")
            images = [tuple(image) for image in _script(url, IMAGES_SCRIPT)]
            height = int(_script(url, "return document.documentElement.scrollHeight;"))
            logs = _call(url, "POST", "/se/log", {"type": "browser"})
            errors = [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]
            shot = _call(url, "POST", "/goog/cdp/execute",
                         {"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": True}})
            return Rendered(title, images, errors, height, base64.b64decode(shot["data"]))
        finally:
            _call(url, "DELETE", "")
    finally:
        driver.terminate()
        driver.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _call(base: str, method: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["value"]


def _script(url: str, script: str):
    return _call(url, "POST", "/execute/sync", {"script": script, "args": []})


def _wait_until_ready(base: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if _call(base, "GET", "/status")["ready"]:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"chromedriver did not start within {seconds:.0f} s")
        time.sleep(0.2)


def _wait_for_load(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while _script(url, "return document.readyState;") != "complete":
        if time.monotonic() > deadline:
            raise RuntimeError(f"page did not finish loading within {seconds:.0f} s")
        time.sleep(0.2)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/browser.py PAGE.html SCREENSHOT.png")
    rendered = render(Path(sys.argv[1]))
    Path(sys.argv[2]).write_bytes(rendered.screenshot)
    broken = [image[0] for image in rendered.images if not (image[1] and image[2] > 0)]
    print(f"title {rendered.title!r}: {len(rendered.images)} images, {len(broken)} broken {broken}, "
          f"{len(rendered.console_errors)} console errors {rendered.console_errors}, page {rendered.page_height} px tall")
    sys.exit(1 if broken or rendered.console_errors else 0)
