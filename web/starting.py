"""The dashboard's port while the appliance is still starting: "Starting…", not a refused connection.

Loading the appliance (the Zigbee stack, the store and its migrations, the pages) takes a second
or more on a small box; a wall display or a phone opened meanwhile would show the browser's own
error page and stop trying. So ``ems run`` binds the port first, with nothing but aiohttp loaded,
and answers every request with 503 and ``Retry-After``: pages get a short page that reloads
itself, the API a JSON body (``{"status": "starting"}``), so a probe can tell starting from up.

When the appliance's own server is ready it is handed the same listening sockets (duplicated
descriptors), and this one closes: no moment in between refuses a connection. The words are the
three the dashboard speaks, kept here rather than in the catalogs: Babel is not loaded yet.
"""

from __future__ import annotations

import html
import socket
from aiohttp import web

RETRY_AFTER_S = 2

_WORDS = {
    "en": ("Starting", "The energy monitor is starting. This page opens by itself in a moment."),
    "es": ("Iniciando", "El monitor de energía se está iniciando. Esta página se abrirá sola en un momento."),
    "zh": ("正在启动", "能源监测器正在启动，此页面稍后会自动打开。"),
}


def _language(accept_language: str | None) -> str:
    """The first of the dashboard's languages the browser asks for (English otherwise)."""
    for part in (accept_language or "").split(","):
        code = part.split(";", 1)[0].strip().lower()[:2]
        if code in _WORDS:
            return code
    return "en"


def _page(language: str) -> str:
    title, text = (html.escape(words) for words in _WORDS[language])
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{RETRY_AFTER_S}"><title>{title}…</title>'
        "<style>body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;"
        "font:1.25rem/1.5 system-ui,sans-serif;background:#10151c;color:#e8eef5;text-align:center}"
        "main{padding:1.5rem;max-width:32rem}h1{font-size:1.6em;margin:0 0 .5em}</style></head>"
        f"<body><main><h1>{title}…</h1><p>{text}</p></main></body></html>"
    )


async def _answer(request: web.BaseRequest) -> web.StreamResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
    if request.path.startswith("/api/"):
        return web.json_response({"status": "starting", "message": _WORDS["en"][1]}, status=503, headers=headers)
    return web.Response(text=_page(_language(request.headers.get("Accept-Language"))), status=503,
                        content_type="text/html", headers=headers)


class StartingServer:
    """Answers "starting" on ``host:port`` until the appliance's server takes the sockets over."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._sockets: list[socket.socket] = []
        self._runner: web.ServerRunner | None = None

    async def start(self) -> None:
        """Bind the port (an OSError, such as the port being taken, is the caller's to report)."""
        self._sockets = listening_sockets(self._host, self._port)
        self._runner = web.ServerRunner(web.Server(_answer), handle_signals=False)
        await self._runner.setup()
        for sock in self._sockets:
            await web.SockSite(self._runner, sock).start()

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one picked for port 0)."""
        return int(self._sockets[0].getsockname()[1]) if self._sockets else self._port

    def sockets(self) -> list[socket.socket]:
        """Duplicates of the listening sockets, for the server that takes over (each is its own
        descriptor: closing this server's leaves them listening)."""
        return [sock.dup() for sock in self._sockets]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening TCP sockets on every address ``host`` names (as asyncio's ``create_server``
    binds them: address reuse, IPv6 sockets IPv6 only); port 0 picks one free port for all."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
