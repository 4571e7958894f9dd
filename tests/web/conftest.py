"""A real ``embodia serve`` on a free 127.0.0.1 port and headless Debian Chromium driving it (selenium).

Skipped, with the reason printed, where selenium, gradio, chromium or chromedriver are absent. Screenshots
are kept under runs/test-artifacts/web/ (the path is printed).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.bench_web import Page, chromium, free_port, missing_browser, start_server, stop_server

ARTIFACTS = Path("runs/test-artifacts/web")
WHY = missing_browser()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(page url, server folder) of one ``embodia serve --llm none`` for the module's tests."""
    if WHY is not None:
        pytest.skip(f"web tests skipped: {WHY}")
    out = tmp_path_factory.mktemp("serve")
    port = free_port()
    process = start_server(port, out, "--max-sessions", "2", "--no-video")
    try:
        yield f"http://127.0.0.1:{port}/", out
    finally:
        stop_server(process)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if WHY is not None:
        pytest.skip(f"web browser tests skipped: {WHY}")
    driver = chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


@pytest.fixture
def page(browser: object, server: tuple[str, Path]) -> Page:
    return Page(browser, server[0]).open()


def screenshot(page: Page, name: str) -> Path:
    """Keep a screenshot as a test artifact and print where it is."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.driver.save_screenshot(str(path))
    print(f"screenshot: {path.resolve()}")
    return path
