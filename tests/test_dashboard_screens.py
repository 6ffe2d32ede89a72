"""The dashboard on a phone (390x844), a tablet (1024x768) and a desktop (1440x900), in
Debian's Chromium: no horizontal scrolling, Trigger reachable without scrolling, a FAIL shown in
the fail colour with its reason, a camera without signal shown with its reason and Trigger
disabled, pause and resume from the page. Screenshots go to artifacts/."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import first_frame, make_config, running_gateway, wait_until
from tests.test_dashboard import ARTIFACTS, browser, demo_line_config

__all__ = ["browser"]  # the fixture, shared with the other dashboard tests

SCREENS = {"phone": (390, 844), "tablet": (1024, 768), "desktop": (1440, 900)}


async def no_horizontal_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    inner = await page.evaluate("window.innerWidth")
    assert width <= inner, f"the page is {width} px wide in a {inner} px window"


def with_a_dead_camera() -> Any:
    config = demo_line_config()
    streams = {
        **{sid: s.model_dump(mode="json") for sid, s in config.streams.items()},
        "dock": {
            "source": {"type": "url", "url": "rtsp://127.0.0.1:9/none", "open_timeout_s": 1},
            "workflow": "inspection",
            "reconnect": {"initial_s": 0.5, "max_s": 1.0},
        },
    }
    return make_config(streams=streams)


@pytest.mark.parametrize("screen", list(SCREENS))
async def test_the_dashboard_fits_every_screen(browser: Browser, screen: str) -> None:
    width, height = SCREENS[screen]
    async with running_gateway(with_a_dead_camera()) as (gateway, client, published):
        await first_frame(gateway, "conveyor")
        await wait_until(lambda: gateway.dispatcher.snapshot("dock").camera.last_error is not None)
        page = await browser.new_page(viewport={"width": width, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(str(client.base_url))
        card = page.locator("article.stream[data-stream=conveyor]")
        await expect(card.locator("dl.health")).to_contain_text("connected")
        trigger = card.get_by_role("button", name="Trigger")
        box = await trigger.bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, "Trigger below the fold"
        assert box["height"] >= 44
        for link in await page.locator("nav a").all():
            link_box = await link.bounding_box()
            assert link_box is not None and link_box["height"] >= 44  # a finger's target
        # trigger until a defective part comes by: FAIL, in the fail colour, with its reason
        banner = card.locator(".verdict-banner")
        for _ in range(12):
            await trigger.click()
            await expect(banner).to_be_visible()
            await expect(trigger).to_be_enabled()
            if "fail" in (await banner.get_attribute("class") or ""):
                break
            await asyncio.sleep(0.1)
        await expect(banner).to_have_class("verdict-banner fail")
        await expect(banner).to_contain_text("defect: ")
        colour = await banner.evaluate("el => getComputedStyle(el).backgroundColor")
        assert colour == "rgb(216, 65, 58)"  # --fail
        await no_horizontal_scroll(page)
        # the camera without signal: its reason on the preview, Trigger disabled
        dock = page.locator("article.stream[data-stream=dock]")
        await expect(dock.locator(".no-signal")).to_contain_text("No signal: cannot open camera")
        await expect(dock.locator(".no-signal")).to_contain_text("retrying in ")
        await expect(dock.get_by_role("button", name="Trigger")).to_be_disabled()
        # pause and resume from the page
        await card.get_by_role("button", name="Pause").click()
        await expect(card.locator(".state")).to_have_text("paused")
        await expect(trigger).to_be_disabled()
        await card.get_by_role("button", name="Resume").click()
        await expect(card.locator(".state")).to_have_text("running")
        await expect(trigger).to_be_enabled()
        await no_horizontal_scroll(page)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"dashboard-{screen}.png"), full_page=True)
        assert errors == []
        assert any(result.passed is False for result in published)
