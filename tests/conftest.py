"""Fixtures for every test: no network, a private cache, and one tiny real run shared by the session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import TINY, run_cli


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the network or the user's cache."""
    monkeypatch.setenv("MNISTGAN_OFFLINE", "1")
    monkeypatch.setenv("MNISTGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One real training run through the CLI: 2 epochs of one 16-image step each."""
    root = tmp_path_factory.mktemp("tiny_run")
    env = {"MNISTGAN_OFFLINE": "1", "MNISTGAN_CACHE": str(root / "cache")}
    proc = run_cli(
        "train",
        "--run-dir",
        root / "run",
        "--epochs",
        "2",
        "--limit",
        "16",
        "--sample-epochs",
        "1,2",
        "--log-every",
        "1",
        *TINY,
        cwd=root,
        env=env,
    )
    (root / "stdout.txt").write_text(proc.stdout)  # what the user saw, beside the run folder
    return root / "run"


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's, at /usr/bin/chromium; .ci/run installs it) driven by Playwright.

    Playwright's own browser download is never used: the tests run offline."""
    playwright = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("needs Debian's chromium: apt-get install -y chromium (.ci/run installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page whose console errors, page errors and requests outside the machine are recorded:
    page.problems lists them ("console: ...", "pageerror: ...", "network: URL")."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))

    def only_local(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "http://127.0.0.1", "http://localhost")):
            return route.continue_()
        page.problems.append(f"network: {url}")
        return route.abort()

    page.route("**/*", only_local)
    yield page
    context.close()
