"""The dashboard in a real headless Chromium against a running gateway with fake upstreams
and generated traffic: every page loads without console errors (screenshots saved to
test-artifacts/dashboard/), the charts agree with the request log, a key is created, used
and revoked through the UI, the playground streams, and a key holder sees only their own
data. One browser for the module; a fresh context (cookies) per test."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from hybridinference.observability.alert_logger import create_alert_logger
from hybridinference.observability.alert_store import open_alert_store
from tests.conftest import ADMIN_TOKEN
from tests.e2e.dashboard_harness import (
    ConsoleLog,
    RunningDashboard,
    chromium,
    chromium_available,
    run_dashboard,
    screenshot,
)
from tests.e2e.helpers import HI, config_with, sdk, start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_gateway

pytestmark = pytest.mark.timeout(90)
ALERT_TOKEN = "alert-token"
OPERATOR_PAGES = ("overview", "providers", "requests", "keys", "alerts", "playground")
REPLY = "Hello from the fake upstream."


class Stack:
    def __init__(
        self, gateway: RunningGateway, dashboard: RunningDashboard, upstream: FakeOpenAIUpstream
    ) -> None:
        self.gateway = gateway
        self.dashboard = dashboard
        self.upstream = upstream
        self.admin = httpx.Client(
            base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )

    def new_key(self, name: str, **fields: Any) -> dict[str, Any]:
        response = self.admin.post("/admin/keys", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def alert_webhook() -> dict[str, Any]:
    return {
        "receiver": "alert-logger",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighErrorRate", "model": "ok", "severity": "critical"},
                "annotations": {"summary": "More than 5% of ok requests fail"},
                "startsAt": "2026-11-29T10:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "f1",
            }
        ],
        "version": "4",
    }


@pytest.fixture(scope="module")
def stack(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboard")
    upstream = fake_openai[1].url + "/v1"
    gateway = start_gateway(
        config_with(upstream, tmp, "status-500", "drip-150", "drip-400", auth={"required": True})
    )
    alerts = run_gateway(
        create_alert_logger(
            lambda: open_alert_store(f"sqlite:///{tmp}/alerts.db"), token=ALERT_TOKEN
        ),
        tmp / "unused.db",
    )
    posted = httpx.post(
        alerts.url + "/webhook",
        json=alert_webhook(),
        headers={"authorization": f"Bearer {ALERT_TOKEN}"},
    )
    assert posted.status_code == 200, posted.text
    dashboard = run_dashboard(gateway.url, alerts.url, ALERT_TOKEN)
    running = Stack(gateway, dashboard, fake_openai[0])
    traffic = sdk(gateway, running.new_key("traffic")["key"])
    for model in ("ok", "ok", "ok", "demo", "demo"):
        traffic.chat.completions.create(model=model, messages=HI)
    for _ in traffic.chat.completions.create(model="ok", messages=HI, stream=True):
        pass
    with pytest.raises(openai.APIStatusError):
        traffic.chat.completions.create(model="status-500", messages=HI)
    gateway.wait_rows(7)
    yield running
    dashboard.stop()
    alerts.stop()
    gateway.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = chromium_available()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with chromium() as running:
        yield running


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


def open_page(browser: Any, console: ConsoleLog, width: int = 1280, height: int = 900) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    console.watch(page)
    page.set_default_timeout(15_000)
    return page


def sign_in(page: Any, stack: Stack, token: str, home: str) -> None:
    page.goto(stack.dashboard.url + "/")
    page.get_by_label("Admin token or API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(f"main[data-page='{home}'][data-loaded]")


def visit(page: Any, stack: Stack, page_id: str) -> None:
    """Open a page afresh (reloading when it is the one already shown)."""
    target = f"{stack.dashboard.url}/#/{page_id}"
    if page.url == target:
        page.reload()
    else:
        page.goto(target)
    page.wait_for_selector(f"main[data-page='{page_id}'][data-loaded]")


def series_sums(page: Any, chart: str) -> dict[str, float]:
    cells = page.eval_on_selector_all(
        f"#chart-{chart} td[data-series]",
        "cells => cells.map(c => [c.dataset.series, c.dataset.value])",
    )
    sums: dict[str, float] = defaultdict(float)
    for series, value in cells:
        sums[series] += float(value or 0)
    return dict(sums)


def by(rows: list[dict[str, Any]], column: str, field: str | None = None) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for row in rows:
        out[row[column]] += 1 if field is None else row[field]
    return dict(out)


def test_every_page_loads_without_console_errors(
    stack: Stack, browser: Any, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    sign_in(page, stack, ADMIN_TOKEN, "overview")
    cookie = page.context.cookies()[0]
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
    for page_id in OPERATOR_PAGES:
        visit(page, stack, page_id)
        assert page.locator("h1").first.inner_text() == page.title().split(" · ")[0]
        screenshot(page, f"operator-{page_id}")
    visit(page, stack, "providers")
    assert page.locator("[data-model='ok'] td", has_text="fake/ok").count() >= 1
    assert page.locator("table.traffic tr[data-route='demo/demo-1']").count() == 1
    visit(page, stack, "alerts")
    assert "More than 5% of ok requests fail" in page.locator("table.alerts").inner_text()
    visit(page, stack, "requests")
    failed = page.locator("tr.failed").first
    failed.get_by_role("button", name="Details").click()
    dialog = page.get_by_role("dialog")
    assert "fake/status-500" in dialog.locator("table.attempts").inner_text()
    screenshot(page, "operator-request-detail")
    page.keyboard.press("Escape")
    assert page.get_by_role("dialog").count() == 0
    assert console.take() == []


# The WCAG contrast of every text node's colour on its nearest opaque background.
CONTRAST_JS = """() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (rgb(c)[3] !== 0) return c;
    }
    return "rgb(255, 255, 255)";
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    const text = walker.currentNode.textContent.trim();
    if (!text || !el.getClientRects().length || el.closest(".visually-hidden, .skip")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || Number(style.opacity) < 1) continue;
    const [a, b] = [lum(rgb(style.color)), lum(rgb(background(el)))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.5 && Number(style.fontWeight) >= 700);
    out.push([text.slice(0, 40), Math.round(ratio * 100) / 100, large]);
  }
  return out;
}"""


def low_contrast(page: Any) -> list[Any]:
    checked = page.evaluate(CONTRAST_JS)
    assert len(checked) >= 5 and all(ratio >= 1 for _, ratio, _ in checked)
    return [t for t in checked if t[1] < (3.0 if t[2] else 4.5)]


def test_text_contrast_meets_wcag_aa(stack: Stack, browser: Any, console: ConsoleLog) -> None:
    page = open_page(browser, console)
    page.goto(stack.dashboard.url + "/")
    page.wait_for_selector("main[data-page='sign-in']")
    assert low_contrast(page) == []
    sign_in(page, stack, ADMIN_TOKEN, "overview")
    for page_id in ("overview", "requests", "keys", "providers", "playground"):
        visit(page, stack, page_id)
        assert low_contrast(page) == [], page_id
    assert console.take() == []


def test_narrow_screen_and_keyboard(stack: Stack, browser: Any, console: ConsoleLog) -> None:
    page = open_page(browser, console, width=390, height=844)
    sign_in(page, stack, ADMIN_TOKEN, "overview")
    nav = page.locator("#nav")
    assert not nav.is_visible()
    menu = page.get_by_role("button", name="Menu")
    menu.click()
    assert nav.is_visible() and menu.get_attribute("aria-expanded") == "true"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width}px wide on a 390px screen"
    screenshot(page, "narrow-overview")
    page.reload()
    page.wait_for_selector("main[data-page='overview'][data-loaded]")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    unlabelled = page.eval_on_selector_all(
        "main input, main select, main textarea",
        "els => els.filter(e => !e.labels || e.labels.length === 0).map(e => e.name)",
    )
    assert unlabelled == []
    assert console.take() == []


def test_overview_charts_match_the_request_log(
    stack: Stack, browser: Any, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    sign_in(page, stack, ADMIN_TOKEN, "overview")
    rows = stack.gateway.rows()
    tiles = {
        t.get_attribute("data-metric"): t.locator("dd").inner_text()
        for t in page.locator(".tile").all()
    }
    assert tiles["requests"] == str(len(rows))
    assert tiles["total_tokens"] == f"{sum(r['total_tokens'] for r in rows):,}"
    errors = sum(1 for r in rows if r["status"] >= 400)
    assert tiles["error_rate"] == f"{errors / len(rows) * 100:.1f}%"
    assert series_sums(page, "requests") == by(rows, "model")
    assert series_sums(page, "tokens") == by(rows, "model", "total_tokens")
    cost = series_sums(page, "cost")
    for model, expected in by(rows, "model", "cost").items():
        assert cost[model] == pytest.approx(expected, abs=1e-9)
    page.get_by_label("Break down by").select_option("route")
    page.wait_for_selector("#chart-requests td[data-series*='/']", state="attached")
    routed = [{**r, "route": r["route"] or "(none)"} for r in rows]  # failed before a route
    assert series_sums(page, "requests") == by(routed, "route")
    screenshot(page, "overview-by-route")
    assert console.take() == []


def test_key_created_used_and_revoked_through_the_ui(
    stack: Stack, browser: Any, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    sign_in(page, stack, ADMIN_TOKEN, "overview")
    visit(page, stack, "keys")
    page.get_by_label("Name").fill("made-in-the-ui")
    page.get_by_label("Allowed models").fill("ok")
    page.get_by_label("Requests per minute").fill("100")
    page.get_by_role("button", name="Create key").click()
    secret_box = page.get_by_label("New API key")
    secret = secret_box.input_value()
    assert secret.startswith("hi-")
    screenshot(page, "operator-key-created")
    key_id = next(
        k["id"]
        for k in stack.admin.get("/admin/keys").json()["data"]
        if k["name"] == "made-in-the-ui"
    )
    reply = sdk(stack.gateway, secret).chat.completions.create(model="ok", messages=HI)
    assert reply.choices[0].message.content == REPLY
    with pytest.raises(openai.NotFoundError):
        sdk(stack.gateway, secret).chat.completions.create(model="demo", messages=HI)
    stack.gateway.wait_rows(1, "key_id = ?", (key_id,))
    visit(page, stack, "keys")
    row = page.locator(f"tr[data-key-id='{key_id}']")
    assert "100 req/min" in row.inner_text()
    assert "2 req, 13 tok, $0.000019" in row.inner_text()  # one served, one refused (404)
    assert secret not in page.content()
    row.get_by_role("button", name="Edit made-in-the-ui").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Requests per minute").fill("250")
    dialog.get_by_role("button", name="Save changes").click()
    page.wait_for_selector(f"tr[data-key-id='{key_id}'] >> text=250 req/min")
    assert stack.admin.get(f"/admin/keys/{key_id}").json()["rpm_limit"] == 250
    row.get_by_role("button", name="Revoke made-in-the-ui").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Revoke key").click()
    page.wait_for_selector(f"tr[data-key-id='{key_id}'] td[data-status='revoked']")
    with pytest.raises(openai.AuthenticationError):
        sdk(stack.gateway, secret).chat.completions.create(model="ok", messages=HI)
    assert console.take() == []


def test_playground_streams_a_reply(stack: Stack, browser: Any, console: ConsoleLog) -> None:
    page = open_page(browser, console)
    sign_in(page, stack, ADMIN_TOKEN, "overview")
    visit(page, stack, "playground")
    page.get_by_label("Model").select_option("drip-150")
    page.get_by_label("Message").fill("Say hello")
    page.get_by_role("button", name="Send").click()
    seen: set[str] = set()
    reply = page.locator(".transcript li.assistant .reply-text")
    while REPLY not in seen:
        seen.add(reply.inner_text())
        page.wait_for_timeout(20)
    assert any(0 < len(text) < len(REPLY) for text in seen), seen  # arrived in pieces
    page.wait_for_selector("main[data-done]")
    facts = {
        f.get_attribute("data-fact"): f.inner_text() for f in page.locator("[data-fact]").all()
    }
    logged = stack.gateway.rows("request_id = ?", (facts["request-id"],))[0]
    assert facts["route"] == "fake/drip-150" == logged["route"]
    assert facts["cost"] == f"${logged['cost']:.4f}"
    assert facts["log-latency"].endswith("ms")
    assert facts["tokens"] == "7 + 6 = 13"
    screenshot(page, "operator-playground")
    assert console.take() == []


def test_playground_stop_cancels_the_upstream_request(
    stack: Stack, browser: Any, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    sign_in(page, stack, ADMIN_TOKEN, "overview")
    visit(page, stack, "playground")
    page.get_by_label("Model").select_option("drip-400")
    page.get_by_label("Message").fill("A long answer, please")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector(".transcript li.assistant .reply-text:not(:empty)")
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector("text=Stopped.")
    for _ in range(100):
        if any(model == "drip-400" for model, _ in stack.upstream.log.cancelled):
            break
        page.wait_for_timeout(50)
    assert any(model == "drip-400" for model, _ in stack.upstream.log.cancelled)
    assert not any(model == "drip-400" for model, _ in stack.upstream.log.completed)
    assert console.take() == []


def test_key_holder_sees_only_their_own_data(
    stack: Stack, browser: Any, console: ConsoleLog
) -> None:
    mine, theirs = stack.new_key("holder-a"), stack.new_key("holder-b")
    for key, count in ((mine, 2), (theirs, 3)):
        for _ in range(count):
            sdk(stack.gateway, key["key"]).chat.completions.create(model="demo", messages=HI)
    stack.gateway.wait_rows(2, "key_id = ?", (mine["id"],))
    stack.gateway.wait_rows(3, "key_id = ?", (theirs["id"],))
    page = open_page(browser, console)
    sign_in(page, stack, mine["key"], "usage")
    links = page.locator("#nav a").all_inner_texts()
    assert links == ["My usage", "My requests", "Playground"]
    assert page.locator(".tile[data-metric='requests'] dd").inner_text() == "2"
    screenshot(page, "key-holder-usage")
    visit(page, stack, "my-requests")
    shown = set(
        page.eval_on_selector_all("tr[data-request-id]", "rs => rs.map(r => r.dataset.requestId)")
    )
    assert shown == {r["request_id"] for r in stack.gateway.rows("key_id = ?", (mine["id"],))}
    screenshot(page, "key-holder-requests")
    visit(page, stack, "playground")
    page.get_by_label("Model").select_option("ok")
    page.get_by_label("Message").fill("hi")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("main[data-done]")
    assert page.locator("[data-fact='cost']").inner_text() == "$0.000019"
    screenshot(page, "key-holder-playground")
    assert console.take() == []
    page.goto(f"{stack.dashboard.url}/#/overview")  # not theirs: sent home instead
    page.wait_for_selector("main[data-page='usage'][data-loaded]")
    statuses = page.evaluate(
        """async (other) => Promise.all([
            fetch('/api/admin/requests').then(r => r.status),
            fetch('/api/admin/keys').then(r => r.status),
            fetch('/api/admin/usage').then(r => r.status),
            fetch('/api/v1/usage/requests?key_id=' + other).then(r => r.json())
              .then(b => b.data.map(r => r.key_id)),
        ])""",
        theirs["id"],
    )
    assert statuses[:3] == [403, 403, 403]
    assert set(statuses[3]) == {mine["id"]}
    stack.admin.delete(f"/admin/keys/{mine['id']}")
    page.reload()
    page.wait_for_selector("main[data-page='sign-in']")
