"""The dashboard and the API docs in headless Chromium (Debian's chromium + chromium-driver, driven by
selenium) with no network but the server's: /docs renders every operation; against a live server with a
finished and a running job the dashboard's rows appear, the funnel chart renders, a screenshot is saved
and is not blank."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

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
        assert "docs/s" in labels[3]  # the stage's throughput
        meta = browser.find_element(By.ID, "funnel-meta").text
        assert meta.startswith("succeeded") and "1/1 input units" in meta and " · took " in meta
        wait_for(lambda: "done: 3 kept, 2 rejected" in browser.find_element(By.ID, "log").text, timeout=30,
                 what="the log's tail")
        assert browser.find_element(By.ID, "retry").is_displayed() is False
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


@pytest.mark.ray
@pytest.mark.parametrize("ray_server", ["sqlite"], indirect=True)
def test_dashboard_cancels_retries_and_shows_errors_and_logs(ray_server, browser):
    """A running job's log tail; cancel, then retry (a new job into the same output, which then runs to
    the end); a failed run's one-line error."""
    from selenium.webdriver.common.by import By

    data = ray_server.data
    (data / "doomed.jsonl").write_text((data / "in.jsonl").read_text())
    with ray_server.client() as c:
        running = c.post("/v1/jobs", json=tiny_spec(data, "gated-ui", "out/ui")).json()["id"]
        doomed_spec = tiny_spec(data, "gated-doomed", "out/doomed")
        doomed_spec["inputs"] = [{"path": str(data / "doomed.jsonl")}]
        doomed = c.post("/v1/jobs", json=doomed_spec).json()["id"]
        for job_id in (running, doomed):
            wait_for(lambda j=job_id: job_status(c, j, {"running"}), what="gated jobs to run")
        (data / "doomed.jsonl").unlink()  # the run then fails on its input
        (ray_server.gates / "gated-doomed").touch()
        failed = wait_for(lambda: job_status(c, doomed, {"failed", "succeeded"}), what="doomed job")
    assert failed["status"] == "failed" and failed["error"] and "\n" not in failed["error"], failed
    assert "doomed.jsonl" in failed["error"] and "Traceback" not in failed["error"]

    browser.get(f"{ray_server.url}/#token={TOKEN}")

    # the list is redrawn every 2 s: read and click rows in one script call, never through a held element
    def select(job_id):
        click = f'const r = document.querySelector(\'#jobs tr[data-job="{job_id}"]\'); if (r) r.click(); return !!r;'
        wait_for(lambda: browser.execute_script(click), timeout=30, what=f"row of {job_id}")
        wait_for(lambda: job_id in browser.find_element(By.ID, "detail-title").text, timeout=30, what="detail")

    def status_of(job_id):
        return browser.execute_script(
            f'const s = document.querySelector(\'#jobs tr[data-job="{job_id}"] .status\'); return s && s.textContent;')

    select(doomed)
    error = wait_for(lambda: browser.find_element(By.ID, "detail-error"), timeout=30, what="error line")
    wait_for(error.is_displayed, timeout=30, what="error line shown")
    assert error.text == "error: " + failed["error"]
    assert browser.find_element(By.ID, "retry").is_displayed()

    select(running)
    wait_for(lambda: "Running entrypoint for job" in browser.find_element(By.ID, "log").text, timeout=30,
             what="the running job's log tail")
    assert browser.find_element(By.ID, "cancel").is_displayed()
    assert not browser.find_element(By.ID, "retry").is_displayed()
    browser.find_element(By.ID, "cancel").click()
    wait_for(lambda: status_of(running) == "cancelled", timeout=60, what="cancelled in the list")
    (ray_server.gates / "gated-ui").touch()
    retry = wait_for(lambda: browser.find_element(By.ID, "retry") if browser.find_element(By.ID, "retry")
                     .is_displayed() else None, timeout=30, what="retry button")
    retry.click()
    meta = wait_for(lambda: browser.find_element(By.ID, "detail-meta").text if f"retry of {running}" in
                    browser.find_element(By.ID, "detail-meta").text else None, timeout=30, what="the new job")
    new_id = browser.find_element(By.ID, "detail-title").text.split("(")[-1].rstrip(")")
    assert new_id != running and new_id.startswith("j")
    wait_for(lambda: status_of(new_id) == "succeeded", timeout=120, what="the retried job to finish")
    assert meta


@pytest.mark.ray
@pytest.mark.parametrize("ray_server", ["sqlite"], indirect=True)
def test_dashboard_draws_a_trainings_loss_curve(ray_server, finished_job, browser):
    """A training job (held pending by Ray: it asks for a GPU this cluster lacks) whose run folder gets
    the trainer's own progress.json and metrics.jsonl, written by trainer.metrics as a run writes them:
    the page shows step, losses, tokens/s and ETA, and draws the train and eval curves."""
    pytest.importorskip("trainer.train")
    from selenium.webdriver.common.by import By

    from trainer.metrics import Metrics, Progress

    with ray_server.client() as c:
        r = c.post("/v1/trainings", json={"job_id": finished_job["id"], "gpus": 1, "args": {"max_steps": 100}})
        if r.status_code == 501:
            pytest.skip(r.json()["detail"])
        assert r.status_code == 201, r.text
        job = r.json()["job"]
    try:
        run = Path(job["output_path"])
        run.mkdir(parents=True, exist_ok=True)
        progress, metrics = Progress(run, True, 0, 100, 100), Metrics(run, True, False, None)
        for step in range(5, 45, 5):
            rec = {"step": step, "loss": 8.0 - step / 10, "tokens": step * 1024, "tok_per_s": 2048.0 + step}
            metrics.write(rec)
            progress.update(rec)
            if step % 20 == 0:
                ev = {"step": step, "eval_loss": 8.5 - step / 10}
                metrics.write(ev)
                progress.update(ev)
        browser.get(f"{ray_server.url}/#token={TOKEN}")
        # the list and the chart are redrawn while the page polls: read and click in one script call each,
        # never through a held element (which a redraw makes stale)
        click = f'const r = document.querySelector(\'#jobs tr[data-job="{job["id"]}"]\'); if (r) r.click(); return !!r;'
        wait_for(lambda: browser.execute_script(click), timeout=30, what="training row")
        chart = wait_for(lambda: browser.execute_script("""
            const q = s => document.querySelector(s), train = q('#loss-chart polyline.train');
            const ev = q('#loss-chart polyline.eval'), meta = q('#training-meta');
            if (!train || !meta || !meta.innerText) return null;
            return {train: train.getAttribute('points').trim().split(/\\s+/).length,
                    eval: ev ? ev.getAttribute('points').trim().split(/\\s+/).length : 0,
                    dots: document.querySelectorAll('#loss-chart circle.eval-point').length,
                    meta: meta.innerText};"""), timeout=30, what="train curve")
        assert (chart["train"], chart["eval"], chart["dots"]) == (8, 2, 2), chart
        assert chart["meta"].startswith(
            "running · step 40/100 · train loss 4.000 · eval loss 4.500 · 2,088 tokens/s · ETA "), chart
        assert not browser.find_element(By.ID, "curation-view").is_displayed()
    finally:
        with ray_server.client() as c:
            c.post(f"/v1/jobs/{job['id']}/cancel")
