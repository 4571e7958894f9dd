"""Web chat benchmark: a real ``embodia serve`` driven by headless Chromium (selenium), as a user drives it.

Measures the time from Send to the first streamed step, the live frames per second the page shows during an
episode (counted in the browser: every change of the frame's image), and the server's memory per session
(RSS of the server process, children included, after each new browser session ran a line). Prints a table
and writes JSON. The same helpers (:func:`start_server`, :func:`chromium`, :class:`Page`) drive tests/web.

    OMP_NUM_THREADS=1 .venv/bin/python evals/bench_web.py --sessions 3 --out runs/bench-web.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.serving import free_port, wait_until_serving

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--window-size=1400,1000")
#: Counts every change of the live frame's image in the page (installed once per page).
COUNT_FRAMES = """
window.__frames = []; const root = document.querySelector('#live-frame');
new MutationObserver(() => { const img = root.querySelector('img');
  if (img && img.src !== window.__lastSrc) { window.__lastSrc = img.src; window.__frames.push(performance.now()); } })
  .observe(root, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
"""


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    for module in ("selenium", "gradio"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[dev]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists() and shutil.which(Path(path).name) is None:
            return f"{path} not found (apt-get install chromium chromium-driver)"
    return None


def start_server(port: int, out: Path, *extra: str, timeout: float = 120.0) -> subprocess.Popen:
    """``embodia serve --llm none`` on ``port``, returned once the page answers (its output in out/serve.log)."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(out / "serve.log", "w")  # noqa: SIM115 -- the server's output for as long as it runs
    server = subprocess.Popen([sys.executable, "-m", "embodia", "serve", "--llm", "none", "--port", str(port),
                               "--out", str(out / "sessions"), "--history", str(out), *extra],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    wait_until_serving(server, f"http://127.0.0.1:{port}/", timeout=timeout, log=out / "serve.log",
                       name="embodia serve")
    return server


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


def chromium(profile: Path) -> Any:
    """Headless Debian Chromium through its chromedriver (no browser download, no network of its own)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(driver_path), options=options)


@dataclass
class Page:
    """One browser tab on the web chat, driven as a user would."""

    driver: Any
    url: str

    def open(self, timeout: float = 60.0) -> Page:
        self.driver.get(self.url)
        # both: Gradio renders the components one after another, and the frame counter observes #live-frame
        self.wait(lambda: self.driver.find_elements("css selector", "#goal-box textarea")
                  and self.driver.find_elements("css selector", "#live-frame"), timeout)
        self.driver.execute_script(COUNT_FRAMES)
        return self

    def wait(self, condition: Any, timeout: float = 60.0, poll: float = 0.02) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(poll)
        raise TimeoutError(f"page condition not met within {timeout:.0f} s")

    def send(self, line: str) -> float:
        """Type ``line`` and press Send; the time it was sent (time.monotonic)."""
        box = self.driver.find_element("css selector", "#goal-box textarea")
        box.clear()
        if len(line) > 2000 or any(ord(c) > 0xFFFF for c in line):  # 100 kB typed key by key takes minutes,
            # and chromedriver types no emoji: set the text as a paste would
            self.driver.execute_script("const t = arguments[0]; t.value = arguments[1];"
                                       "t.dispatchEvent(new Event('input', {bubbles: true}));", box, line)
        else:
            box.send_keys(line)
        self.driver.find_element("css selector", "#send").click()
        return time.monotonic()

    def messages(self) -> list[str]:
        """The visible text of every chat message (read in one script: the chat re-renders as it streams)."""
        return list(self.driver.execute_script(
            "return [...document.querySelectorAll('#chat .message')].map(m => m.innerText.trim())"))

    def steps(self) -> list[str]:
        """Titles of the streamed step messages (the collapsible ones)."""
        return [m for m in self.messages() if m.startswith(("#", "act(", "done:", "failed:", "reflect"))]

    def click(self, element_id: str) -> None:
        self.driver.find_element("css selector", f"#{element_id}").click()

    def frame_src(self) -> str | None:
        found = self.driver.find_elements("css selector", "#live-frame img")
        return found[0].get_attribute("src") if found else None

    def frame_times(self) -> list[float]:
        """Browser times (ms) at which the live frame changed since the page opened."""
        return list(self.driver.execute_script("return window.__frames || []"))

    def status(self) -> str:
        return self.driver.find_element("css selector", "#status").text

    def replied(self, *words: str) -> bool:
        return any(all(w in m for w in words) for m in self.messages()[-4:])


def server_rss(pid: int) -> int:
    """RSS bytes of the server and its children (each session's video encoder is a child ffmpeg)."""
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def bench(sessions: int, goal: str, out: Path) -> dict[str, Any]:
    port = free_port()
    server = start_server(port, out, "--max-sessions", str(sessions + 1))
    drivers: list[Any] = []
    try:
        base_rss = server_rss(server.pid)
        rss, first_step, fps = [base_rss], [], []
        for n in range(sessions):
            driver = chromium(Path(tempfile.mkdtemp(prefix="embodia-bench-")))
            drivers.append(driver)
            page = Page(driver, f"http://127.0.0.1:{port}/").open()
            sent = page.send(goal)
            page.wait(page.steps, 120)
            first_step.append(time.monotonic() - sent)
            page.wait(lambda p=page: p.replied("Done") or p.replied("could not"), 300, poll=0.2)
            times = page.frame_times()
            if len(times) >= 2:
                fps.append((len(times) - 1) / ((times[-1] - times[0]) / 1000))
            time.sleep(1.0)
            rss.append(server_rss(server.pid))
            print(f"session {n + 1}: first step {first_step[-1]:.2f} s, {len(times)} frames, "
                  f"RSS {rss[-1] / 2**20:.0f} MiB", flush=True)
        deltas = [b - a for a, b in itertools.pairwise(rss)]
        return {"goal": goal, "sessions": sessions, "first_step_s": first_step, "frames_per_s": fps,
                "rss_base_mib": base_rss / 2**20, "rss_delta_mib": [d / 2**20 for d in deltas],
                "first_step_s_median": sorted(first_step)[len(first_step) // 2],
                "frames_per_s_median": sorted(fps)[len(fps) // 2] if fps else 0.0,
                "rss_per_session_mib": sum(deltas) / len(deltas) / 2**20}
    finally:
        for driver in drivers:
            driver.quit()
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3, help="browser sessions opened one after another")
    parser.add_argument("--goal", default="make a wood pickaxe", help="the goal each session types")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-web.json"))
    args = parser.parse_args()
    if (why := missing_browser()) is not None:
        sys.exit(f"cannot run the web bench: {why}")
    result = bench(args.sessions, args.goal, Path(tempfile.mkdtemp(prefix="embodia-bench-web-")))
    print(f"{'measure':32s} {'median':>8s}  all")
    print(f"{'submit → first step (s)':32s} {result['first_step_s_median']:8.2f}  "
          f"{[round(x, 2) for x in result['first_step_s']]}")
    print(f"{'live frames/s shown':32s} {result['frames_per_s_median']:8.1f}  "
          f"{[round(x, 1) for x in result['frames_per_s']]}")
    print(f"{'RSS per session (MiB)':32s} {result['rss_per_session_mib']:8.1f}  "
          f"{[round(x, 1) for x in result['rss_delta_mib']]} (base {result['rss_base_mib']:.0f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
