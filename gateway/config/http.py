"""The `http` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from gateway.config.base import StrictModel


class ImageUrlConfig(StrictModel):
    """Image inputs sent as `{"type": "url"}`: fetched only from listed hosts, so the gateway
    never becomes an open proxy into the plant network."""

    allow: list[str] = Field(
        default_factory=list,
        description="hosts (`name` or `name:port`) image URLs may point at; empty: URLs refused",
    )
    timeout_s: float = Field(5.0, gt=0, le=120)
    max_bytes: int = Field(20 * 1024 * 1024, ge=1024)


class HttpConfig(StrictModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="0 picks a free port")
    api_key: SecretStr | None = Field(
        None,
        description="when set, required on every route: `Authorization: Bearer <key>` (or the "
        "bare key), `?api_key=`, or `api_key` in a JSON body",
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    read_timeout_s: float = Field(
        10.0, gt=0, le=600, description="a request's headers and body must arrive within this"
    )
    max_connections: int = Field(
        200, ge=1, description="connections and requests at once; past this: 503"
    )
    jobs_kept: int = Field(1000, ge=1, description="async trigger jobs remembered")
    consume_kept: int = Field(
        100, ge=1, description="continuous results kept per stream until consumed (oldest drop)"
    )
    idempotency_ttl_s: float = Field(300.0, gt=0)
    image_outputs: Literal["inline", "url", "omit"] = Field(
        "inline",
        description="image outputs in trigger answers: base64 JPEG, a link to fetch, or named only",
    )
    output_images_kept: int = Field(
        32, ge=0, le=10_000, description="recent results whose image outputs can be fetched by URL"
    )
    image_urls: ImageUrlConfig = Field(default_factory=ImageUrlConfig)
    max_batch_images: int = Field(
        64, ge=1, le=10_000, description="images one workflow request may carry (all decoded)"
    )
    workspace: str | None = Field(
        None,
        description="Roboflow workspace name named-workflow routes must use; unset: any",
    )
    max_runtime_streams: int = Field(
        4, ge=0, le=64, description="streams `/inference_pipelines/initialise` may add at run time"
    )
