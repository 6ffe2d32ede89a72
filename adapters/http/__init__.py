"""HTTP front end: FastAPI on uvicorn. `HttpAdapter(config.http, core)` serves `create_app`."""

from adapters.http.app import create_app
from adapters.http.server import HttpAdapter

__all__ = ["HttpAdapter", "create_app"]
