"""GET /metrics against a running gateway: scraped during load, then checked against the
request log row by row (counts, tokens, errors, TTFT observations, writer counters)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory, route

P = "hybridinference_"


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **match: str) -> float:
    return sum(
        value
        for labels, value in samples.get(name, [])
        if all(labels.get(k) == v for k, v in match.items())
    )


def chat(url: str, model: str, stream: bool = False) -> int:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    with httpx.Client(timeout=20) as client:
        response = client.post(url + "/v1/chat/completions", json=body)
        return response.status_code


def test_scrape_during_load_matches_request_log(make_gateway: GatewayFactory) -> None:
    plan = (
        [("ok", False)] * 24
        + [("ok", True)] * 12
        + [("drip-20", True)] * 6
        + [("status-500", False)] * 5
        + [("no-such-model", False)] * 5
    )
    gateway = make_gateway(
        models=[
            {"name": "ok", "routes": [route("fake", "ok", pricing={"input": 1.0, "output": 2.0})]},
            {"name": "drip-20", "routes": [route("fake", "drip-20")]},
            {"name": "status-500", "routes": [route("fake", "status-500")]},
        ]
    )
    scrapes: list[dict[str, Any]] = []
    done = threading.Event()

    def scraper() -> None:
        while not done.is_set():
            scrapes.append(scrape(gateway.url))
            done.wait(0.05)

    watcher = threading.Thread(target=scraper)
    watcher.start()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda item: chat(gateway.url, *item), plan))
    done.set()
    watcher.join()
    assert len(scrapes) >= 2
    assert all(f"{P}in_flight_requests" in s for s in scrapes)
    assert Counter(statuses)[200] == 42

    rows = gateway.wait_rows(len(plan))
    assert len(rows) == len(plan)
    final = scrape(gateway.url)
    assert total(final, f"{P}requests_total") == len(rows)
    by_model_status = Counter((r["model"], str(r["status"])) for r in rows)
    for (model, status), count in by_model_status.items():
        label = model if model != "no-such-model" else "unknown"
        assert total(final, f"{P}requests_total", model=label, status=status) == count
    assert total(final, f"{P}requests_total", model="no-such-model") == 0  # bounded labels
    ok = [r for r in rows if r["status"] == 200]
    assert total(final, f"{P}tokens_total", kind="prompt") == sum(r["prompt_tokens"] for r in ok)
    assert total(final, f"{P}tokens_total", kind="completion") == sum(
        r["completion_tokens"] for r in ok
    )
    assert abs(total(final, f"{P}cost_usd_total") - sum(r["cost"] for r in rows)) < 1e-9
    assert total(final, f"{P}time_to_first_token_seconds_count") == sum(
        1 for r in rows if r["ttft_ms"] is not None and r["status"] < 400
    )
    assert total(final, f"{P}request_duration_seconds_count") == len(rows)
    errors = Counter(r["error_type"] for r in rows if r["error_type"])
    for error_type, count in errors.items():
        assert total(final, f"{P}errors_total", error_type=error_type) == count
    assert total(final, f"{P}log_rows_written_total") == len(rows)
    assert total(final, f"{P}log_queue_depth") == 0
    assert total(final, f"{P}in_flight_requests") == 0
    assert (({"route": "fake/ok"}, 0.0)) in final[f"{P}route_in_flight"]


def test_metrics_can_be_turned_off(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway(observability={"metrics": False})
    assert httpx.get(gateway.url + "/metrics").status_code == 404
    assert chat(gateway.url, "ok") == 200


def test_per_key_series_only_when_enabled(make_gateway: GatewayFactory) -> None:
    admin = {"Authorization": "Bearer test-admin-token"}
    for per_key, expected in ((True, 1.0), (False, 0.0)):
        gateway = make_gateway(auth={"required": True}, observability={"per_key_labels": per_key})
        key = httpx.post(gateway.url + "/admin/keys", json={"name": "m"}, headers=admin).json()
        response = httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "ok", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {key['key']}"},
            timeout=20,
        )
        assert response.status_code == 200
        assert total(scrape(gateway.url), f"{P}key_requests_total", key_id=key["id"]) == expected
        gateway.stop()


def test_budget_used_ratio_follows_key_spend(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway(auth={"required": True, "refresh_seconds": 0.1})
    admin = {"Authorization": "Bearer test-admin-token"}
    created = httpx.post(
        gateway.url + "/admin/keys", json={"name": "b", "daily_budget": 0.01}, headers=admin
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert total(scrape(gateway.url), f"{P}budget_used_ratio", period="day") == 0
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "ok", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=20,
    )
    assert response.status_code == 200
    cost = gateway.wait_rows(1)[0]["cost"]
    assert cost > 0
    deadline = time.monotonic() + 10
    ratio = 0.0
    while time.monotonic() < deadline and ratio == 0.0:
        ratio = total(scrape(gateway.url), f"{P}budget_used_ratio", period="day")
        time.sleep(0.1)
    assert abs(ratio - cost / 0.01) < 1e-9


def test_metrics_bearer_token_when_configured(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway(
        observability={"metrics_token_env": "METRICS_TOKEN"},
        env={"METRICS_TOKEN": "scrape-secret-123"},
    )
    assert httpx.get(gateway.url + "/metrics").status_code == 401
    wrong = httpx.get(gateway.url + "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    ok = httpx.get(gateway.url + "/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
    assert ok.status_code == 200 and f"{P}requests_total" in ok.text
