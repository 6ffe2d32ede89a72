"""The dashboard in a real browser (Playwright driving Debian's Chromium) on the real gateway,
plus its server-sent events and latency routes over plain HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Locator, Route, async_playwright, expect

from gateway.config import GatewayConfig
from tests.conftest import ROOT, first_frame, make_config, running_gateway, wait_until

ARTIFACTS = ROOT / "artifacts"


def demo_line_config(**top: Any) -> GatewayConfig:
    """The demo workflow on a fast conveyor (5 parts a second, every other one defective), so a
    second of triggers gives both passes and failures."""
    return make_config(
        streams={
            "conveyor": {
                "source": {
                    "type": "synthetic",
                    "width": 640,
                    "height": 480,
                    "fps": 30,
                    "part_period_frames": 6,
                    "defect_every": 2,
                },
                "workflow": "inspection",
            }
        },
        **top,
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make test` installs it (apt-get)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium)
        try:
            yield launched
        finally:
            await launched.close()


async def test_trigger_button_shows_waiting_then_the_rendered_result_and_history_filters(
    browser: Browser,
) -> None:
    config = demo_line_config()
    async with running_gateway(config) as (gateway, client, published):
        await first_frame(gateway, "conveyor")
        for _ in range(12):  # a mix of good and defective parts for the history
            await client.post("/streams/conveyor/trigger")
            await asyncio.sleep(0.08)
        assert {r.passed for r in published} == {True, False}
        await wait_stored(client, len(published))

        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(str(client.base_url))
        card = page.locator("article.stream[data-stream=conveyor]")
        await expect(card.locator("dl.health")).to_contain_text("connected")
        await expect(page.locator("#live")).to_have_text("live")

        # Hold the trigger request until the page has said it is waiting (the real gateway
        # answers in milliseconds), then let it through to the gateway.
        held: asyncio.Future[Route] = asyncio.get_running_loop().create_future()

        async def hold(route: Route) -> None:
            held.set_result(route)

        await page.route("**/streams/conveyor/trigger", hold)
        await card.get_by_role("button", name="Trigger").click()
        status = card.locator(".trigger-status")
        await expect(status).to_have_text("Waiting for device…")
        await expect(card.get_by_role("button", name="Trigger")).to_be_disabled()
        route = await asyncio.wait_for(held, 5)
        await route.continue_()
        banner = card.locator(".verdict-banner")
        await expect(banner).to_be_visible()
        rendered = card.locator(".rendered img")
        await expect(rendered).to_be_visible()
        assert (await rendered.get_attribute("src") or "").startswith("data:image/jpeg;base64,")
        assert await rendered.evaluate("img => img.naturalWidth") == 640
        outputs = card.locator("table.outputs")
        await expect(outputs).to_contain_text("serial")
        await expect(outputs).to_contain_text("defect")
        last = published[-1]
        assert last.origin.value == "http"
        verdict = "PASS" if last.passed else "FAIL"
        await expect(banner).to_contain_text(verdict)
        await expect(banner).to_have_class(f"verdict-banner {'pass' if last.passed else 'fail'}")
        await expect(status).to_contain_text(f"#{last.result_id},")
        # the live feed got it over server-sent events
        await expect(page.locator("#feed tr").first).to_contain_text(str(last.result_id))

        # History: filter to failures; every row failed, each with its stored frame.
        history = page.locator("#history")
        await history.scroll_into_view_if_needed()
        await history.locator("select[name=outcome]").select_option("fail")
        await history.get_by_role("button", name="Show").click()
        failed = sum(1 for r in published if r.passed is False)
        await expect(page.locator("#history-summary")).to_contain_text(f"of {failed} results")
        rows = page.locator("#history-rows tr")
        await expect(rows).to_have_count(failed)
        await expect(rows.locator(".verdict")).to_have_text(["FAIL"] * failed)
        thumbs = rows.locator("img.thumb")
        await expect(thumbs).to_have_count(failed)
        await wait_for_images(thumbs)
        csv_link = await history.get_by_role("link", name="Download CSV").get_attribute("href")
        assert csv_link == "/results.csv?outcome=fail"
        csv = (await client.get(csv_link)).text.splitlines()
        assert len(csv) == failed + 1  # header + the failures

        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        assert errors == []


async def wait_stored(client: httpx.AsyncClient, count: int) -> None:
    """The history's writer thread has committed `count` results."""
    for _ in range(100):  # bounded: 5 s
        if (await client.get("/results", params={"limit": 1})).json()["total"] == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the history did not reach {count} results")


async def wait_for_images(thumbs: Locator) -> None:
    """Every thumbnail loaded a real JPEG (fetched with the page's credentials)."""
    widths: list[int] = []
    for _ in range(100):  # bounded: 5 s
        widths = await thumbs.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        if widths and all(width == 640 for width in widths):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"thumbnails did not load: {widths}")


async def test_event_stream_carries_results_and_stream_status() -> None:
    async with running_gateway(demo_line_config()) as (gateway, client, _):
        await first_frame(gateway, "conveyor")
        events: list[tuple[str, dict[str, Any]]] = []
        sinks_before = gateway.bus.sink_count

        async def listen() -> None:
            async with client.stream("GET", "/events") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                event = ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        events.append((event, json.loads(line.removeprefix("data: "))))
                        if event == "result":
                            return

        listener = asyncio.create_task(listen())
        await wait_until(lambda: any(kind == "streams" for kind, _ in events))
        trigger = await client.post("/streams/conveyor/trigger", json={"trigger_id": "sse-1"})
        await asyncio.wait_for(listener, 5)
        kind, result = events[-1]
        assert kind == "result" and result["trigger_id"] == "sse-1"
        assert result["outputs"]["annotated"] == {"type": "image", "width": 640, "height": 480}
        assert trigger.json()["outputs"]["annotated"]["type"] == "base64"
        # the tab went away: its subscription to the result bus goes with it
        await wait_until(lambda: gateway.bus.sink_count == sinks_before)
        streams = events[0][1]["streams"]
        assert isinstance(streams, list) and streams[0]["id"] == "conveyor"

        latency = (await client.get("/stats/latency", params={"window_s": 60})).json()
        assert latency["sources"]["http"]["count"] == 1
        p50, p99 = latency["sources"]["http"]["p50_ms"], latency["sources"]["http"]["p99_ms"]
        assert p50 == p99 == pytest.approx(trigger.json()["timings"]["total_ms"], abs=0.01)
        bad = await client.get("/stats/latency", params={"window_s": 100000})
        assert bad.status_code == 422 and "window_s" in bad.text


async def test_dashboard_with_an_api_key_serves_the_page_but_guards_data() -> None:
    config = demo_line_config(http={"api_key": "s3cret"})
    async with running_gateway(config, api_key="s3cret") as (_, client, _):
        base = str(client.base_url)
        async with httpx.AsyncClient(base_url=base, timeout=5) as anonymous:
            assert (await anonymous.get("/")).status_code == 200
            assert (await anonymous.get("/stats/latency")).status_code == 401
            async with anonymous.stream("GET", "/events") as response:
                assert response.status_code == 401
            async with anonymous.stream("GET", "/events?access_token=wrong") as response:
                assert response.status_code == 401
            async with anonymous.stream("GET", "/events?access_token=s3cret") as response:
                assert response.status_code == 200
            # the query token is for the event stream only
            assert (await anonymous.get("/streams?access_token=s3cret")).status_code == 401
        assert (await client.get("/dashboard/app.js")).status_code == 200
        assert (await client.get("/dashboard/nope.js")).status_code == 404


async def test_with_an_api_key_the_page_asks_for_it_shows_data_and_downloads_the_csv(
    browser: Browser,
) -> None:
    config = make_config(http={"api_key": "s3cret"})
    async with running_gateway(config, api_key="s3cret") as (gateway, client, published):
        await first_frame(gateway)
        for _ in range(3):
            assert (await client.post("/streams/cam/trigger")).status_code == 200
        await wait_stored(client, len(published))
        page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        errors: list[str] = []
        asked: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        async def answer(dialog: Any) -> None:
            asked.append(dialog.message)
            await dialog.accept("s3cret")

        page.on("dialog", answer)
        await page.goto(str(client.base_url))
        card = page.locator("article.stream[data-stream=cam]")
        await expect(card.locator("dl.health")).to_contain_text("connected")  # data came
        await expect(page.locator("#live")).to_have_text("live")
        assert asked and "API key" in asked[0]
        async with page.expect_download() as waiting:
            await page.locator("#csv").click()
        download = await waiting.value
        path = await download.path()
        rows = path.read_text().splitlines()
        assert rows[0].startswith("id,stream") and len(rows) == len(published) + 1
        assert errors == []


async def test_api_docs_render_without_internet(browser: Browser) -> None:
    """/docs is Swagger UI with its scripts served by the gateway: it renders every route in a
    browser that reaches nothing but the gateway (a plant network has no internet), also with
    an API key set (the page and the schema hold no data)."""
    async with running_gateway(make_config(http={"api_key": "k"}), api_key="k") as (_, client, _):
        base = str(client.base_url)
        page = await browser.new_page()
        elsewhere: list[str] = []
        page.on(
            "request",
            lambda request: (
                None
                if request.url.startswith((base, "blob:", "data:"))
                else elsewhere.append(request.url)
            ),
        )
        await page.goto(f"{base}/docs")
        await page.get_by_text("/streams/{stream_id}/trigger", exact=True).first.wait_for(
            timeout=20_000
        )
        await page.close()
        assert elsewhere == [], elsewhere
        async with httpx.AsyncClient(base_url=base) as anonymous:
            assert (await anonymous.get("/streams")).status_code == 401  # data needs the key
