"""The fleet page in Debian's Chromium, on a phone and a desktop: the gateways on the broker
with their streams, a remote Trigger showing "Waiting for device…" for a gateway that is away
and the result once it is back; no horizontal scrolling. Screenshots go to artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from simulators.broker import Mosquitto
from tests.test_dashboard import ARTIFACTS, browser
from tests.test_dashboard_screens import no_horizontal_scroll
from tests.test_fleet import Member, fleet_config, has_frame

__all__ = ["browser"]


@pytest.mark.parametrize("screen", [(390, 844), (1440, 900)], ids=["phone", "desktop"])
async def test_the_fleet_page_lists_gateways_and_triggers_through_the_broker(
    browser: Browser, mosquitto: Mosquitto, tmp_path: Path, screen: tuple[int, int]
) -> None:
    viewer = Member(fleet_config("line-a", mosquitto.port, tmp_path, http=True))
    away = Member(fleet_config("line-b", mosquitto.port, tmp_path))
    try:
        gateway = await viewer.start()
        await away.start()
        await has_frame(away)
        assert gateway.http is not None
        width, height = screen
        page = await browser.new_page(viewport={"width": width, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"http://127.0.0.1:{gateway.http.port}/fleet")
        card = page.locator("article.card", has_text="line-b")
        await expect(card).to_contain_text("online")
        await expect(page.locator("article.card", has_text="line-a")).to_be_visible()
        await away.stop()
        await expect(card).to_contain_text("offline", timeout=10_000)
        await card.get_by_role("button", name="Trigger").click()
        await expect(card.locator(".fleet-request")).to_have_text("Waiting for device…")
        await away.start()
        await expect(card.locator(".fleet-request")).to_contain_text("result", timeout=15_000)
        await expect(card).to_contain_text("online", timeout=10_000)
        await no_horizontal_scroll(page)
        ARTIFACTS.mkdir(exist_ok=True)
        name = "phone" if width < 500 else "desktop"
        await page.screenshot(path=str(ARTIFACTS / f"fleet-{name}.png"), full_page=True)
        assert errors == []
    finally:
        await away.stop()
        await viewer.stop()
