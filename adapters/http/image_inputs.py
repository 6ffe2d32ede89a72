"""Image inputs as the clients we replace send them: base64 (bare or as a data URI),
`{"type": "base64" | "url", "value": ...}`, file bytes from a multipart upload, or a list of
any of these (a batch: one run per image).

A `url` image is fetched by the gateway, so it is fenced: http/https only, hosts from
`http.image_urls.allow` only, no redirects (a redirect could leave the allowlist), a timeout
and a size limit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np

from gateway.config import ImageUrlConfig
from gateway.frame_source import Image
from gateway.redact import redact


class BadInput(ValueError):
    """An input the request got wrong, named by where it is (`inputs.image.1`)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def decode_bytes(where: str, data: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise BadInput(where, "not a decodable image (JPEG, PNG, BMP, TIFF...)")
    return image  # type: ignore[return-value]


def decode_base64(where: str, text: str) -> bytes:
    """Bare base64 or a data URI (`data:image/png;base64,...`)."""
    payload = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(where, "not valid base64") from None


class HostAllowlist:
    """`http.image_urls.allow`: the hosts (`name` or `name:port`) the gateway may open URLs
    on for a client, image inputs and video references alike."""

    def __init__(self, hosts: list[str]) -> None:
        self._hosts = {host.lower() for host in hosts}

    def check(self, where: str, url: str, *, when_empty: str | None = None) -> None:
        """Refuse `url` unless its host is listed; `when_empty` is the message for an empty
        list (default: the same as for a host not listed)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        netloc = f"{host}:{parts.port}" if parts.port else host
        if not self._hosts and when_empty is not None:
            raise BadInput(where, when_empty)
        if host not in self._hosts and netloc not in self._hosts:
            raise BadInput(where, f"host {netloc!r} is not in http.image_urls.allow")


class ImageFetcher:
    """Fetches `url` image inputs within the configured fence."""

    def __init__(self, config: ImageUrlConfig) -> None:
        self._config = config
        self.allowlist = HostAllowlist(config.allow)

    def _check(self, where: str, url: str) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise BadInput(where, f"image URLs must be http or https, not {scheme!r}")
        off = "image URLs are off: list the host in http.image_urls.allow"
        self.allowlist.check(where, url, when_empty=off)

    async def fetch(self, where: str, url: str) -> bytes:
        self._check(where, url)
        shown, limit, timeout = redact(url), self._config.max_bytes, self._config.timeout_s
        try:
            async with (
                asyncio.timeout(timeout),
                httpx.AsyncClient(follow_redirects=False, timeout=timeout) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise BadInput(where, f"{shown} answered HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise BadInput(where, f"{shown} is over http.image_urls.max_bytes ({limit})")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise BadInput(
                            where, f"{shown} is over http.image_urls.max_bytes ({limit})"
                        )
                return bytes(data)
        except TimeoutError:
            raise BadInput(where, f"{shown} did not answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise BadInput(where, f"{shown} could not be fetched: {type(exc).__name__}") from None


async def read_image(where: str, value: Any, fetcher: ImageFetcher) -> Image:
    """One image input, decoded."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str) and value.startswith(("http://", "https://")):
        data = await fetcher.fetch(where, value)  # Instill takes image URLs as bare strings
    elif isinstance(value, str):
        data = decode_base64(where, value)
    elif isinstance(value, dict):
        kind, payload = value.get("type"), value.get("value")
        if not isinstance(payload, str):
            raise BadInput(f"{where}.value", "expected a string")
        if kind == "base64":
            data = decode_base64(where, payload)
        elif kind == "url":
            data = await fetcher.fetch(where, payload)
        else:
            raise BadInput(where, f"image type {kind!r} is not supported: send base64 or url")
    else:
        raise BadInput(where, 'expected an image: {"type": "base64" | "url", "value": ...}')
    return await asyncio.to_thread(decode_bytes, where, data)


async def read_images(where: str, value: Any, fetcher: ImageFetcher) -> Image | list[Image]:
    """An image input, or a list of them (a batch), decoded in order."""
    if isinstance(value, list):
        if not value:
            raise BadInput(where, "an empty list of images")
        return [await read_image(f"{where}.{i}", item, fetcher) for i, item in enumerate(value)]
    return await read_image(where, value, fetcher)
