"""``make demo``: serve an example app on loopback with uvicorn and walk through it over HTTP.

``python -m examples.tour [fastapi|starlette|litestar]`` (default: fastapi).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

APPS = {
    "fastapi": "examples.fastapi_app.main",
    "starlette": "examples.starlette_app.main",
    "litestar": "examples.litestar_app.main",
}


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Litestar turns on INFO logging
    framework = sys.argv[1] if len(sys.argv) > 1 else "fastapi"
    if framework not in APPS:
        raise SystemExit(f"unknown framework {framework!r}; choose from {', '.join(APPS)}")
    folder = Path(tempfile.mkdtemp(prefix="duo-orm-demo-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder / 'demo.db'}")
    app = importlib.import_module(APPS[framework]).app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    print(
        f"serving the {framework} example on http://127.0.0.1:{port} ({os.environ['DATABASE_URL']})"
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            tour(client)
    finally:
        server.should_exit = True
        thread.join()


def show(label: str, response: httpx.Response) -> httpx.Response:
    body = json.dumps(response.json()) if response.content else ""
    request = response.request
    line = f"{label:<34} {request.method:<5} {request.url.path:<18} -> {response.status_code}"
    print(f"{line} {body[:110]}")
    return response


def tour(client: httpx.Client) -> None:
    ann = show("create", client.post("/users/", json={"email": "ann@x.io", "name": "Ann"})).json()
    show("create", client.post("/users/", json={"email": "bob@x.io", "name": "Bob"}))
    show("list", client.get("/users/"))
    show("patch (only the name)", client.patch(f"/users/{ann['id']}", json={"name": "Annie"}))
    show("bulk-bump (hooks per row)", client.post("/users/bulk-bump"))
    show("list, sorted by -name", client.get("/users/", params={"sort": "-name"}))
    show("list, name__icontains=ANN", client.get("/users/", params={"name__icontains": "ANN"}))
    first = show("list, cursor pages of 1", client.get("/users/", params={"size": 1, "cursor": ""}))
    show("list, its next link", client.get(first.json()["next"]))
    show("400: filter not allowed", client.get("/users/", params={"updated_at__lt": "2030-01-01"}))
    show("422: validate() refuses", client.post("/users/", json={"email": "nope", "name": "N"}))
    show("bad body (framework's own status)", client.post("/users/", json={"email": "c@x.io"}))
    show("404: missing user", client.get("/users/999"))
    show("409: duplicate email", client.post("/users/", json={"email": "ann@x.io", "name": "A"}))
    show("400: unknown sort field", client.get("/users/", params={"sort": "password"}))
    schema = client.get("/openapi.json")
    if schema.status_code == 404:
        schema = client.get("/schema/openapi.json")  # Litestar's place for it
    if schema.status_code == 200:
        paths = schema.json()["paths"]
        documented = (paths.get("/users/") or paths["/users"])["post"]["responses"]
        print(f"{'OpenAPI responses for POST /users/':<34} {sorted(documented)}")


if __name__ == "__main__":
    main()
