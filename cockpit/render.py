"""Render cockpit dashboards in headless Chromium and report what each page drew.

Runs in Superset's own environment (``.venv-superset/bin/python cockpit/render.py``), which
carries Selenium; the browser and its driver are Debian's ``chromium`` and ``chromium-driver``.
Input on stdin (JSON): ``url``, ``cookie`` (a logged-in ``session`` cookie value),
``dashboards`` (slugs), ``out_dir``, ``timeout``. Output on stdout (JSON), one entry per
dashboard: seconds until every chart was drawn, the charts found and drawn, error texts seen
(alerts and failed-chart messages), the screenshot's path, the browser's start time and where
the page's time went (``timing``: the browser's Navigation and Resource Timing, ms).

It waits as Superset's own report screenshots do (``superset/utils/webdriver.py``): the chart
containers present, then no ``.loading`` spinner left; "drawn" means the container holds a
canvas, an SVG, a table or text.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
# Flags measured to work here (../shared/specs/stack-facts.md).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1200",
    "--lang=zh-CN",
)
# What a failed chart or page shows (Superset's error alerts, in both UI languages).
ERROR_MARKERS = ("Unexpected error", "出错", "错误", "Error:", "Traceback", "未找到")
_PAGE_STATE = """
const charts = [...document.querySelectorAll('.chart-container')];
const drawn = charts.filter(c => c.querySelector('canvas, svg, table') || c.innerText.trim());
const alerts = [...document.querySelectorAll("[role='alert'], .ant-alert-error")]
    .map(a => a.innerText.trim()).filter(t => t);
return {charts: charts.length, drawn: drawn.length,
        loading: document.querySelectorAll('.loading').length,
        alerts: alerts, text: document.body ? document.body.innerText : ''};
"""
# Where a page's time went, from the browser's own Navigation and Resource Timing (ms from the
# navigation's start): the HTML, the static bundle (scripts, styles, fonts), the page's API
# calls and the chart data requests among them.
_TIMING = """
const nav = performance.getEntriesByType('navigation')[0];
const res = performance.getEntriesByType('resource');
const span = list => list.length ? {n: list.length,
    start: Math.min(...list.map(r => r.startTime)), end: Math.max(...list.map(r => r.responseEnd)),
    kb: Math.round(list.reduce((a, r) => a + (r.transferSize || 0), 0) / 1024)} : null;
const charts = res.filter(r => r.name.includes('/api/v1/chart/data'));
return {html_end: nav.responseEnd, dom_content_loaded: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
        static: span(res.filter(r => r.name.includes('/static/'))),
        api: span(res.filter(r => r.name.includes('/api/') && !charts.includes(r))),
        chart_data: span(charts),
        chart_data_slowest: charts.length ? Math.max(...charts.map(r => r.duration)) : null};
"""


def _driver(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(DRIVER))


def render(job: dict) -> list[dict]:
    out_dir = Path(job["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="cockpit-chromium-") as profile:
        began = time.monotonic()
        driver = _driver(profile)
        start_seconds = time.monotonic() - began
        try:
            driver.get(f"{job['url']}/health")  # a page of the host, so the cookie can be set
            driver.add_cookie({"name": "session", "value": job["cookie"], "path": "/"})
            for slug in job["dashboards"]:
                results.append(_dashboard(driver, job, slug, out_dir))
                results[-1]["browser_start_seconds"] = round(start_seconds, 3)
        finally:
            driver.quit()
    return results


def _dashboard(driver: webdriver.Chrome, job: dict, slug: str, out_dir: Path) -> dict:
    began = time.monotonic()
    driver.get(f"{job['url']}/superset/dashboard/{slug}/")
    deadline = began + job.get("timeout", 120)
    state: dict = {}
    while time.monotonic() < deadline:
        state = driver.execute_script(_PAGE_STATE)
        if state["charts"] and not state["loading"] and state["drawn"] == state["charts"]:
            break
        time.sleep(0.1)
    seconds = time.monotonic() - began
    timing = {
        k: round(v, 1) if isinstance(v, float) else v
        for k, v in driver.execute_script(_TIMING).items()
    }
    time.sleep(1.0)  # ECharts animates its series in (~1 s); the screenshot waits for it
    shot = out_dir / f"{slug}.png"
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1600, max(900, min(int(height), 4000)))
    driver.save_screenshot(str(shot))
    text = state.get("text", "")
    return {
        "slug": slug,
        "seconds": round(seconds, 3),
        "charts": state.get("charts", 0),
        "drawn": state.get("drawn", 0),
        "loading": state.get("loading", 0),
        "alerts": state.get("alerts", []),
        "errors": [m for m in ERROR_MARKERS if m in text],
        "title": driver.title,
        "screenshot": str(shot),
        "timed_out": time.monotonic() >= deadline,
        "timing": timing,
    }


if __name__ == "__main__":
    json.dump(render(json.load(sys.stdin)), sys.stdout, ensure_ascii=False)
