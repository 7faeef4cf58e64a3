"""The floor for HTTP: uvicorn (httptools, uvloop) answering every request with a
fixed V1-shaped body, no routing, parsing or model. `python -m benchmarks.serving.bare
PORT` listens on 127.0.0.1:PORT.
"""

from __future__ import annotations

import sys

import uvicorn

BODY = b'{"predictions":[{"label":0,"probabilities":[0.9,0.1]}]}'
HEADERS = [(b"content-type", b"application/json")]


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )
