"""The console in a real browser: Debian's chromium, headless, driven through chromedriver by
Selenium, against the real gateway binary and real backends, all on 127.0.0.1 ephemeral ports.

Run by `cargo test --test it console::` (tests/it/console.rs), or alone:

    HOOKGATE_BIN=target/debug/hookgate .venv/bin/python tests/console/browser_test.py

`bash tests/console/setup.sh` installs Selenium into .venv/; chromium and chromium-driver come
from apt (scripts/test.sh installs them). Screenshots of each page go to tests/console/output/
(ignored by git). Every wait is bounded; the only fixed wait is the window in which a paused
route must deliver nothing, where there is no event to wait for.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("CONSOLE_TEST_OUTPUT", ROOT / "tests/console/output"))
SECRET = "console-secret-0123"
TOKEN = "console-admin-token-7f3a"
WAIT = 15  # seconds, for anything with a signal (as tests/it/common)
XSS_BODY = "<script>alert('body')</script><img src=x onerror=alert('body-img')>"
XSS_HEADER = "<img src=x onerror=alert('hdr')><script>alert('hdr-script')</script>"


def log(msg):
    print(f"[{time.monotonic() - STARTED:6.2f}s] {msg}", flush=True)


STARTED = time.monotonic()


# --- backends ---------------------------------------------------------------------------------


class Backend:
    """A recording HTTP backend that can answer an error status or be stopped (down) and started
    again on the same port."""

    def __init__(self, name):
        self.name = name
        self.received = []
        self.status = 200
        self.lock = threading.Lock()
        self.server = None
        self.port = free_port()

    def start(self):
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with backend.lock:
                    status = backend.status
                    if status < 300:
                        backend.received.append((dict(self.headers.items()), body))
                answer = b'{"ok":true}' if status < 300 else b'{"error":"backend failing"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self):
        with self.lock:
            return [b for _, b in self.received]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the gateway ------------------------------------------------------------------------------


class Gateway:
    def __init__(self, binary, config, workdir):
        path = Path(workdir) / "hookgate.yaml"
        path.write_text(json.dumps(config, indent=2))
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        self.proc = subprocess.Popen(
            [binary, "run", "-c", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self.lines = []
        ready = threading.Event()

        def read():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                if v.get("message") == "listening":
                    self.listen, self.admin = v["listen"], v["admin"]
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(WAIT):
            self.stop()
            raise SystemExit("the gateway did not start:\n" + "\n".join(self.lines))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def post(self, path, body, headers):
        host, port = self.listen.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", path, body=body, headers=headers)
        res = conn.getresponse()
        res.read()
        conn.close()
        return res.status

    def signed(self, path, body, extra=None):
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"content-type": "application/json", "x-mediaconvert-signature": sig}
        headers.update(extra or {})
        return self.post(path, body, headers)

    def api(self, path):
        req = urllib.request.Request(
            f"http://{self.admin}{path}", headers={"authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())


def until(what, f, timeout=WAIT, every=0.05):
    """Polls `f` until it returns something true (bounded); returns that."""
    deadline = time.monotonic() + timeout
    while True:
        v = f()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


# --- the browser ------------------------------------------------------------------------------


def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    for what, path in (("chromium", chromium), ("chromedriver", driver_bin)):
        if not os.path.exists(path):
            raise SystemExit(
                f"{what} is missing: install Debian's chromium and chromium-driver "
                "(`bash scripts/test.sh` does, with apt)"
            )
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=en-US",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver: Selenium never looks for (or downloads) one itself.
    service = Service(executable_path=driver_bin)
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


class Console:
    def __init__(self, driver, admin):
        self.d = driver
        self.base = f"http://{admin}/"
        self.log_entries = []

    def wait(self, cond, timeout=WAIT, what=""):
        # The lists are drawn again as they refresh: an element found a moment ago may be gone.
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.05,
                                 ignored_exceptions=[StaleElementReferenceException]).until(cond)
        except TimeoutException:
            self.shot("timeout")
            raise AssertionError(f"timed out after {timeout} s waiting for {what or cond}")

    def visible(self, css, timeout=WAIT):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout, css)

    def text_in(self, css, text, timeout=WAIT):
        return self.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text), timeout,
                         f"{text!r} in {css}")

    def click(self, css):
        """Clicks `css` once it is there, finding it again if the page redrew it meanwhile."""
        def attempt(d):
            el = d.find_element(By.CSS_SELECTOR, css)
            if not el.is_displayed() or not el.is_enabled():
                return False
            el.click()
            return True
        self.wait(attempt, what=f"{css} to click")

    def row_texts(self, css):
        """The text of each element matching `css`, read in one go."""
        return self.d.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)", css)

    def go(self, hash_):
        self.d.get(self.base + hash_)

    def shot(self, name):
        OUT.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(OUT / f"{name}.png"))

    def logs(self, allow=()):
        """The browser's log since the last call; fails on any error it should not have."""
        entries = self.d.get_log("browser")
        self.log_entries.extend(entries)
        bad = [
            e for e in entries
            if e["level"] == "SEVERE"
            and not (e.get("source") == "network" and any(a in e["message"] for a in allow))
        ]
        assert not bad, "errors in the browser's console:\n" + "\n".join(
            f"{e['level']} {e.get('source')}: {e['message']}" for e in bad
        )
        return entries

    def no_alert(self):
        try:
            alert = self.d.switch_to.alert
            text = alert.text
            alert.dismiss()
            raise AssertionError(f"a dialog opened: {text!r}")
        except NoAlertPresentException:
            pass


# --- the test ---------------------------------------------------------------------------------


def main():
    binary = os.environ.get("HOOKGATE_BIN") or str(ROOT / "target/debug/hookgate")
    if not os.path.exists(binary):
        raise SystemExit(f"{binary} is missing: build it (cargo build) or set HOOKGATE_BIN")
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    sync_be = Backend("sync").start()
    orders_be = Backend("orders")  # down: not listening until resumed below
    billing_be = Backend("billing").start()
    billing_be.status = 500
    work = tempfile.mkdtemp(prefix="hookgate-console-")

    def mc_route(name, backend, delivery=None):
        r = {
            "name": name,
            "path": f"/hooks/{name}",
            "upstream": backend.url(f"/{name}"),
            "timeout": "2s",
            "verify": {"scheme": "mediaconvert", "secrets": [{"id": "k1", "value": SECRET}]},
        }
        if delivery:
            r["delivery"] = delivery
        return r

    config = {
        "server": {"listen": "127.0.0.1:0", "workers": 1},
        "admin": {"listen": "127.0.0.1:0", "token": {"id": "admin", "value": TOKEN}},
        "log": {"format": "json", "level": "info"},
        "store": {"kind": "redb", "path": str(Path(work) / "hookgate.redb")},
        "routes": [
            mc_route("payments", sync_be),
            mc_route("orders", orders_be, {
                "mode": "queue", "max_attempts": 1000,
                "backoff": {"base": "100ms", "max": "300ms"},
            }),
            mc_route("billing", billing_be, {
                "mode": "queue", "max_attempts": 2,
                "backoff": {"base": "10ms", "max": "20ms"},
            }),
        ],
    }
    gw = Gateway(binary, config, work)
    log(f"gateway on {gw.listen}, admin on {gw.admin}")
    driver = browser()
    c = Console(driver, gw.admin)
    ok = False
    try:
        run(c, gw, sync_be, orders_be, billing_be)
        ok = True
    finally:
        if not ok:
            try:
                c.shot("failure")
                print("--- browser log ---", file=sys.stderr)
                for e in c.log_entries + driver.get_log("browser"):
                    print(f"{e['level']} {e.get('source')}: {e['message']}", file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - best effort while failing
                print(f"(no browser log: {e})", file=sys.stderr)
            print("--- gateway log (last 40 lines) ---", file=sys.stderr)
            print("\n".join(gw.lines[-40:]), file=sys.stderr)
        driver.quit()
        gw.stop()
        for b in (sync_be, orders_be, billing_be):
            b.stop()
        shutil.rmtree(work, ignore_errors=True)
    log(f"passed; screenshots in {OUT}")


def run(c, gw, sync_be, orders_be, billing_be):
    d = c.d

    # 1. The token: asked for, a wrong one refused, the right one accepted and kept for the tab.
    c.go("")
    c.visible("#token")
    assert not d.find_element(By.ID, "nav").is_displayed(), "no pages before the token"
    c.shot("01-token")
    d.find_element(By.ID, "token").send_keys("not-the-token" + Keys.ENTER)
    c.text_in("#login-error", "Wrong token")
    assert d.execute_script("return sessionStorage.getItem('hookgate.admin-token')") is None
    token = d.find_element(By.ID, "token")
    token.clear()
    token.send_keys(TOKEN + Keys.ENTER)
    c.visible("#nav")
    c.visible("#events-empty")
    assert "hookgate send -c config.yaml --route payments" in d.find_element(By.ID, "events-empty").text
    c.shot("02-events-empty")
    # Both refusals of the token are the expected 401s; nothing else may be in the log.
    c.logs(allow=("401",))
    d.refresh()
    c.visible("#events-empty")
    assert not d.find_element(By.ID, "login").is_displayed(), "the token is kept for the tab"
    c.logs()
    log("token: prompt, wrong refused, right accepted and kept")

    # API errors are shown, not swallowed: a filter the API refuses, an event it does not have.
    d.execute_script("const s = document.getElementById('f-status'); s.type = 'text'; s.value = 'abc';")
    d.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    c.text_in("#notice", "400 status: expected a number, got `abc`")
    d.find_element(By.ID, "f-clear").click()
    c.wait(lambda d: not d.find_element(By.ID, "notice").is_displayed(), what="the error cleared")
    c.go("#/events/0000nothing")
    c.text_in("main", "No event with id 0000nothing")
    c.logs(allow=("status of 400", "status of 404"))
    c.go("#/events")
    c.visible("#events-empty")
    log("errors: the API's refusal and a missing event shown")

    # 2. A forged request shows in Events within 3 s, rejected with its reason; its detail shows
    # the signature redacted and the doctor's diagnosis.
    body = b'{"job_id":"job_forged","status":"completed","amount":42}'
    forged = "sha256=" + hmac.new(b"wrong-secret", body, hashlib.sha256).hexdigest()
    t0 = time.monotonic()
    assert gw.post("/hooks/payments", body, {"x-mediaconvert-signature": forged}) == 401
    forged_id = c.wait(
        lambda d: next((r.get_attribute("data-id")
                        for r in d.find_elements(By.CSS_SELECTOR, "#events-table tbody tr")
                        if "rejected" in r.text and "mismatch" in r.text), None),
        timeout=3, what="the forged request in Events within 3 s")
    seen_after = time.monotonic() - t0
    log(f"forged request listed after {seen_after:.2f} s")
    row = f"#events-table tr[data-id='{forged_id}']"
    text = c.row_texts(row)[0]
    assert "payments" in text and "401" in text, text
    utc = d.execute_script(f"return document.querySelector(\"{row} time\").title")
    assert utc.endswith(" UTC") and utc.startswith(time.strftime("%Y-", time.gmtime())), utc
    c.click(f"{row} a")
    c.visible("#diagnosis")
    headers = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
               for r in d.find_elements(By.CSS_SELECTOR, "#headers tbody tr")}
    assert headers.get("x-mediaconvert-signature") == "[redacted]", headers
    assert forged[7:] not in d.page_source, "the signature value reached the page"
    diag = d.find_element(By.ID, "diagnosis").text
    assert "unknown" in diag and "a wrong secret or a forgery" in diag, diag
    assert '"job_id": "job_forged"' in d.find_element(By.ID, "body").text, "JSON indented"
    assert d.find_element(By.ID, "replay").get_attribute("disabled"), "a forgery cannot be replayed"
    d.set_window_size(1280, 1300)  # the whole detail in one picture
    c.shot("04-event-detail")
    d.set_window_size(1280, 800)
    c.logs()
    log("forged: listed, redacted, diagnosed")

    # 3. Sender-controlled markup in a body and a header is shown as text: nothing runs.
    xss = json.dumps({"job_id": "job_xss", "note": XSS_BODY}).encode()
    assert gw.signed("/hooks/payments", xss, {"x-note": XSS_HEADER}) == 200
    xss_id = until("the XSS event", lambda: next(
        (e["id"] for e in gw.api("/api/events?q=job_xss")["events"]), None))
    c.go(f"#/events/{xss_id}")
    c.visible("#body")
    assert XSS_BODY in d.find_element(By.ID, "body").text
    headers = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
               for r in d.find_elements(By.CSS_SELECTOR, "#headers tbody tr")}
    assert headers.get("x-note") == XSS_HEADER, headers
    c.go("#/events")
    c.visible("#events-table")
    c.go(f"#/events/{xss_id}")
    c.visible("#body")
    c.no_alert()
    counts = d.execute_script(
        "return [document.scripts.length, document.images.length,"
        " document.querySelectorAll('[onerror]').length]")
    assert counts == [1, 0, 0], f"scripts, images, onerror attributes: {counts}"
    c.shot("05-event-xss")
    entries = c.logs()
    assert not [e for e in entries if "Content Security Policy" in e["message"] or "/x" in e["message"]], entries
    # Replay from the detail page: the backend gets the same bytes again.
    d.find_element(By.ID, "replay").click()
    c.text_in("#replay-result", "Sent again as event")
    until("the replayed body", lambda: sync_be.bodies().count(xss) == 2)
    c.logs()
    log("xss: rendered as text, no dialog, no script, no CSP report; replay sent the same bytes")

    # 4. A queued route whose backend is down: attempts on the event; Pause, then Resume from
    # the Routes page decides when the backend receives.
    first = '{"order":"o-1","note":"caf\u00e9 \u2705"}\n'.encode()
    second = b'{"order":"o-2",  "spaced":true}'
    assert gw.signed("/hooks/orders", first) == 202
    order_id = until("two failed attempts", lambda: next(
        (e["id"] for e in gw.api("/api/events?route=orders")["events"] if e["attempts"] >= 2), None))
    c.go(f"#/events/{order_id}")
    c.visible("#attempts li")
    # Read in one go: the page is drawn again as attempts are added.
    attempts = d.execute_script(
        "return [...document.querySelectorAll('#attempts li')].map((li) => li.textContent)")
    assert len(attempts) >= 2 and "no answer" in attempts[0], attempts
    assert "backend unreachable" in attempts[0], attempts
    c.shot("06-event-attempts")
    c.logs()

    c.go("#/routes")
    pause = c.visible("#pause-orders")
    # Keyboard: the control is reached with Tab from the page's start, and Enter presses it.
    d.execute_script("document.activeElement && document.activeElement.blur()")
    reached = False
    for _ in range(40):
        ActionChains(d).send_keys(Keys.TAB).perform()
        if d.switch_to.active_element.get_attribute("id") == "pause-orders":
            reached = True
            break
    assert reached, "Pause is not reachable with Tab"
    ActionChains(d).send_keys(Keys.ENTER).perform()
    c.visible("#paused-orders")
    c.text_in("#pause-orders", "Resume deliveries")
    orders_be.start()
    assert gw.signed("/hooks/orders", second) == 202
    c.wait(lambda d: d.find_element(By.CSS_SELECTOR, "[data-route=orders] .depth").text == "2",
           what="two events queued on the paused route")
    # No event says "nothing was delivered": watch for a while, with retries due every 0.3 s.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert orders_be.bodies() == [], "a paused route delivered"
        time.sleep(0.05)
    c.shot("07-routes-paused")
    c.click("#pause-orders")
    until("both queued events delivered after Resume", lambda: len(orders_be.bodies()) == 2)
    assert sorted(orders_be.bodies()) == sorted([first, second]), "byte for byte"
    c.wait(lambda d: not d.find_elements(By.ID, "paused-orders"), what="the paused badge gone")
    c.wait(lambda d: d.find_element(By.CSS_SELECTOR, "[data-route=orders] .depth").text == "0",
           what="the queue emptied")
    c.shot("03-routes")
    c.logs()
    log("queue: attempts shown; paused delivered nothing; resumed delivered both byte for byte")

    # 5. A dead letter replayed from the Dead letters page reaches the backend byte for byte.
    dead = b'{"invoice":"in_9",\r\n "total":"12.50 \xe2\x82\xac"}  \n'
    assert gw.signed("/hooks/billing", dead) == 202
    dead_id = until("the billing event dead",
                    lambda: gw.api("/api/events?state=dead")["events"])[0]["id"]
    c.go(f"#/events/{dead_id}")
    c.text_in("main", "This event is a dead letter")
    assert len(d.find_elements(By.CSS_SELECTOR, "#attempts li")) == 2
    c.go("#/dead")
    c.text_in("#dead-table tbody tr", "billing")
    c.shot("08-dead-letters")
    billing_be.status = 200
    Select(d.find_element(By.ID, "d-route")).select_by_value("billing")
    d.find_element(By.ID, "d-preview").click()
    c.text_in("#d-count", "1 dead letter of route billing will be sent again")
    d.find_element(By.ID, "d-confirm").click()
    c.text_in("#d-done", "Put 1 dead letter back in the queue")
    got = until("the dead letter delivered", lambda: billing_be.bodies())
    assert got == [dead], f"byte for byte: {got!r}"
    c.visible("#dead-empty")
    c.logs(allow=())
    log("dead letter: previewed, replayed, delivered byte for byte")

    # 6. The pages at phone width: nothing wider than the window.
    d.set_window_size(390, 844)
    for name, page, ready in (("events", "#/events", "#events-table"),
                              ("routes", "#/routes", "#routes section"),
                              ("dead-letters", "#/dead", "#dead-empty"),
                              ("event", f"#/events/{order_id}", "#attempts")):
        c.go(page)
        c.visible(ready)
        wide = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{page} is {wide}px wider than a phone screen"
        c.shot(f"09-phone-{name}")
    d.set_window_size(1280, 800)
    c.go("#/events")
    c.visible("#events-table")
    c.shot("10-events")
    c.no_alert()
    c.logs()
    log("phone width: no page wider than the screen")


if __name__ == "__main__":
    main()
