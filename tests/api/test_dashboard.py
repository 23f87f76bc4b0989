"""The dashboard and the API docs in headless Chromium (Debian's chromium + chromium-driver, driven by
selenium) with no network but the server's: /docs renders every operation; against a live server with a
finished and a running job the dashboard's rows appear, the funnel chart renders, a screenshot is saved
and is not blank."""

from __future__ import annotations

import io
import shutil

import pytest
from service_harness import TOKEN, job_status, tiny_spec, wait_for

CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not DRIVER:
        pytest.skip("chromium-driver is not installed (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")  # dev dependency

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no network: only the server answers
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


@pytest.mark.parametrize("plain_server", ["sqlite"], indirect=True)
def test_docs_page_renders_every_operation_offline(plain_server, browser):
    """/docs is Swagger UI from the locally installed assets: with every host but 127.0.0.1 unresolvable it
    still renders one block per operation of the schema, and loads nothing from anywhere else."""
    import httpx
    from selenium.webdriver.common.by import By

    schema = httpx.get(plain_server.url + "/openapi.json").json()
    operations = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    browser.get(plain_server.url + "/docs")
    blocks = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary-path"), timeout=30, what="operations"
    )
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) == len(operations), timeout=30,
             what="every operation")
    shown = {
        (b.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
         b.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
        for b in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    assert blocks and shown == operations and ("POST", "/v1/jobs/{job_id}/retry") in shown
    assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("curator job service")
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(plain_server.url) for u in loaded), loaded
    browser.get(plain_server.url + "/redoc")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='tag/jobs']"), timeout=30,
             what="ReDoc's jobs section")


@pytest.mark.ray
@pytest.mark.parametrize("ray_server", ["sqlite"], indirect=True)
def test_dashboard_lists_jobs_and_draws_the_funnel(ray_server, finished_job, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    with ray_server.client() as c:
        running = c.post("/v1/jobs", json=tiny_spec(ray_server.data, "gated-dash", "out/dash")).json()["id"]
        wait_for(lambda: job_status(c, running, {"running"}), what="gated job to run")
    try:
        browser.get(f"{ray_server.url}/#token={TOKEN}")

        def row(job_id):
            rows = browser.find_elements(By.CSS_SELECTOR, f'#jobs tr[data-job="{job_id}"]')
            return rows[0] if rows else None

        done_row = wait_for(lambda: row(finished_job["id"]), timeout=30, what="finished job row")
        run_row = wait_for(lambda: row(running), timeout=30, what="running job row")
        assert run_row.find_element(By.CSS_SELECTOR, ".status").text == "running"
        assert "#token" not in browser.current_url  # the token left the address bar
        done_row.click()
        bars = wait_for(
            lambda: browser.find_elements(By.CSS_SELECTOR, "#funnel svg rect.bar"), timeout=30, what="funnel bars"
        )
        assert len(bars) == 2  # read, min_length
        labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#funnel svg text")]
        assert labels[0] == "read" and labels[2] == "min_length"
        assert "3 kept · 2 dropped (too_short 2)" in labels[3]
        assert float(bars[1].get_attribute("width")) < float(bars[0].get_attribute("width"))
        assert browser.find_element(By.ID, "manifest-link").is_displayed()
        report = browser.find_element(By.ID, "report-link")
        assert report.is_displayed() and report.get_attribute("href").endswith(f"/v1/jobs/{finished_job['id']}/report")
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot))
        image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
        colors = image.getcolors(maxcolors=1 << 20)
        assert image.size[0] >= 800 and len(colors) > 20  # text, bars, badges: far from a blank page
        assert any(abs(r - 0x4C) < 8 and abs(g - 0x7B) < 8 and abs(b - 0xD9) < 8 for _, (r, g, b) in colors)
    finally:
        with ray_server.client() as c:  # stopped, so that it no longer counts against the quota
            c.post(f"/v1/jobs/{running}/cancel")
            wait_for(lambda: job_status(c, running, {"cancelled", "failed", "succeeded"}), what="cancellation")
