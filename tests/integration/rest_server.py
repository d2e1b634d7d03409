"""A scriptable HTTP(S) server on 127.0.0.1 for the REST client tests.

Each path gets a queue of responders (callables ``request -> web.Response``, sync or async);
the last one repeats. Every request is recorded (method, path, query, headers, body) so tests
can count server hits and check what the client really sent, including verifying ED25519
signatures with PyNaCl.
"""
from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from aiohttp import web
from nacl.signing import VerifyKey

__all__ = ['Hit', 'RestServer', 'json_reply', 'text_reply', 'slow_reply', 'verify_signature']


@dataclass
class Hit:
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: bytes


def json_reply(payload: Any, status: int = 200, headers: Optional[dict] = None) -> Callable:
    return lambda request: web.Response(status=status, text=json.dumps(payload), headers=headers,
                                        content_type='application/json', charset='utf-8')


def text_reply(text: str, status: int = 200, headers: Optional[dict] = None) -> Callable:
    return lambda request: web.Response(status=status, text=text, headers=headers, content_type='text/plain')


def slow_reply(seconds: float, then: Callable) -> Callable:
    async def reply(request):
        await asyncio.sleep(seconds)
        return then(request)
    return reply


def verify_signature(hit: Hit, instruction: str) -> None:
    """Rebuild Backpack's signing string from what arrived and check X-Signature against X-API-Key.

    Written independently of the client's signer: GET signs the query, POST/DELETE the JSON
    body; keys sorted; then timestamp and window from the headers. Raises on a bad signature.
    """
    if hit.method == 'GET':
        params = dict(hit.query)
    else:
        params = json.loads(hit.body)
    pairs = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        pairs.append(f'{key}={value}')
    message = '&'.join([f'instruction={instruction}', *pairs,
                        f"timestamp={hit.headers['X-Timestamp']}", f"window={hit.headers['X-Window']}"])
    key = VerifyKey(base64.b64decode(hit.headers['X-API-Key']))
    key.verify(message.encode(), base64.b64decode(hit.headers['X-Signature']))


class RestServer:
    """``await RestServer(ssl_context).start()``; ``script(path, *responders)``; ``await stop()``."""

    def __init__(self, ssl_context=None, host: str = '127.0.0.1'):
        self.ssl_context = ssl_context
        self.host = host
        self.port: Optional[int] = None
        self.hits: List[Hit] = []
        self._scripts: Dict[str, List[Callable]] = {}
        self._runner: Optional[web.AppRunner] = None

    @property
    def url(self) -> str:
        scheme = 'https' if self.ssl_context else 'http'
        return f'{scheme}://{self.host}:{self.port}'

    def script(self, path: str, *responders: Callable) -> None:
        self._scripts[path] = list(responders)

    def hits_for(self, path: str) -> List[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    async def start(self) -> 'RestServer':
        app = web.Application()
        app.router.add_route('*', '/{tail:.*}', self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, '127.0.0.1', 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.hits.append(Hit(request.method, request.path, dict(request.query), dict(request.headers), body))
        queue = self._scripts.get(request.path)
        if not queue:
            return web.Response(status=404, text=json.dumps({'code': 'RESOURCE_NOT_FOUND', 'message': 'no script'}),
                                content_type='application/json')
        responder = queue.pop(0) if len(queue) > 1 else queue[0]
        result = responder(request)
        if asyncio.iscoroutine(result):
            result = await result
        return result
