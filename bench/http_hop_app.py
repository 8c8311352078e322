"""The HTTP hop floor's endpoint: GET /alerts answering a small JSON, under uvicorn with the alerts API's options.

Run by bench/http_hop.py: `python bench/http_hop_app.py --port N [--workers 2]`.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI

from pricealert.alerts.serve import uvicorn_options

app = FastAPI()


@app.get("/alerts")
async def alerts() -> dict[str, Any]:
    """A small JSON page, the size of an empty alert list."""
    return {"items": [], "page": 1, "page_size": 20, "total": 0}


def main() -> None:
    """Serve until SIGTERM, in `--workers` processes sharing the socket (ALERTS_WORKERS' default: 2)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.workers == 1:
        uvicorn.run(app, **uvicorn_options("127.0.0.1", args.port))
    else:
        uvicorn.run("http_hop_app:app", workers=args.workers, **uvicorn_options("127.0.0.1", args.port))


if __name__ == "__main__":
    main()
