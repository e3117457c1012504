"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (stdlib only).

Chromium reads commands from its fd 3 and writes replies and events to fd 4, each message a JSON
object ended by a NUL byte. Enough of the protocol to load a page, watch its console, network
and exceptions, evaluate expressions, take a screenshot and print to PDF.
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
from pathlib import Path
from types import TracebackType
from typing import Any

BINARIES = ("chromium-headless-shell", "chromium", "chromium-browser")
_LIBEXEC = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/headless_shell")


def find_chromium() -> str | None:
    """Path of a headless Chromium, or None."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in _LIBEXEC if os.access(p, os.X_OK)), None)


class Chromium:
    """One headless Chromium process and one page in it."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._id = 0
        self._buffer = b""
        self._session = ""

    def __enter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="cellauto-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child_fds() -> None:
            # move both ends clear of 3 and 4 first: either may already be one of them
            read_end = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self._process = subprocess.Popen(
            [
                self.binary,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,  # the dup2'ed fds 3 and 4 must survive; ours are close-on-exec
            preexec_fn=child_fds,  # dup2 the pipes onto fds 3 and 4 in the child
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        target = self.call("Target.createTarget", url="about:blank", session=False)["targetId"]
        self._session = self.call(
            "Target.attachToTarget", targetId=target, flatten=True, session=False
        )["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.call("Browser.close", session=False)
        except (OSError, RuntimeError, TimeoutError):
            self._process.kill()
        finally:
            self._process.wait(timeout=30)
            os.close(self._to_chrome)
            os.close(self._from_chrome)
            self._profile.cleanup()

    def call(self, method: str, *, session: bool = True, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events met meanwhile are kept)."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session and self._session:
            message["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event `method` (already received or the next to come)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._next()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _next(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_chrome], [], [], self.timeout)
            if not ready:
                raise TimeoutError(f"chromium sent nothing for {self.timeout} s")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        reply: dict[str, Any] = json.loads(message)
        return reply

    def load(self, file: Path, width: int = 1100, height: int = 1400) -> None:
        """Open a local file at a given viewport and wait for its load event."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", url=file.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the viewport."""
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def pdf(self, paper: tuple[float, float] = (8.27, 11.69)) -> bytes:
        """The page printed to PDF (A4 by default; inches)."""
        data = self.call(
            "Page.printToPDF", paperWidth=paper[0], paperHeight=paper[1], printBackground=True
        )["data"]
        return base64.b64decode(data)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, log errors, failed loads."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error",):
                found.append(f"log: {params['entry'].get('text')}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')}")
        return found

    def requests(self) -> list[str]:
        """URLs the page requested."""
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        ]
