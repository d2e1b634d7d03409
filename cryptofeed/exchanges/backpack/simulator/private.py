"""The simulator's private API: signed REST routes and the hooks of private WebSocket streams.

Use ``AccountService`` inside the simulator server: ``add_routes(app)`` mounts the signed REST
endpoints of backpack-api.md §5 on an aiohttp application, ``authorize_ws`` checks the
``signature`` of a private SUBSCRIBE (§7), ``snapshot_frames`` gives the frames to push right
after such a subscribe, and every account event is handed to ``event_sink`` (set by the server)
as ``(api_key, stream_base, symbol, data)``. The same operations are available as Python calls
(``place_order``, ``cancel_order``) for tests and tools.

Every request is verified by ``verify.verify_rest`` from what actually arrived; the order and
balance logic lives in ``account.AccountEngine``. Errors are JSON ``{"code", "message"}`` with
the statuses of §6: 401 for authentication, 400 for invalid requests, 404 ``RESOURCE_NOT_FOUND``
for an unknown order.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Awaitable, Callable, Mapping, Optional

from aiohttp import web

from cryptofeed.exchanges.backpack.simulator.account import (
    POSITION_UPDATE, AccountEngine, AccountEvent, FeeSchedule, OrderRejected, fill_to_rest, order_to_history,
    order_to_rest,
)
from cryptofeed.exchanges.backpack.simulator.verify import KeyRegistry, SimAuthError, verify_rest, verify_ws

__all__ = ['AccountService', 'HISTORY_DEFAULT_LIMIT', 'HISTORY_MAX_LIMIT']

HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 1000
_JSON_TYPE = 'application/json'
_MARKET_TYPES = ('SPOT', 'PERP')
_USER_FILL_TYPES = ('User',)

EventSink = Callable[[str, str, Optional[str], dict], None]


def _json(data: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(',', ':')).encode(), status=status,
                        content_type=_JSON_TYPE, charset='utf-8', headers=headers)


def _error(exc: Exception) -> web.Response:
    return _json(exc.body(), status=exc.status)


def _bad(message: str) -> OrderRejected:
    return OrderRejected(400, 'INVALID_CLIENT_REQUEST', message)


def _int_param(params: Mapping[str, Any], name: str, default: Optional[int] = None, *,
               minimum: int = 0, maximum: Optional[int] = None) -> Optional[int]:
    value = params.get(name)
    if value is None or value == '':
        return default
    if isinstance(value, bool):
        raise _bad(f'{name} must be an integer')
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not text.lstrip('-').isdigit():
            raise _bad(f'{name} must be an integer, got {value!r}')
        number = int(text)
    if number < minimum or (maximum is not None and number > maximum):
        bound = f'{minimum}..{maximum}' if maximum is not None else f'>= {minimum}'
        raise _bad(f'{name} must be within {bound}, got {number}')
    return number


def _market_type(params: Mapping[str, Any]) -> Optional[str]:
    value = params.get('marketType')
    if value in (None, ''):
        return None
    if value not in _MARKET_TYPES:
        raise _bad(f'marketType must be SPOT or PERP here, got {value!r}')
    return value


def _ascending(params: Mapping[str, Any]) -> bool:
    value = params.get('sortDirection')
    if value in (None, '', 'Desc'):
        return False
    if value == 'Asc':
        return True
    raise _bad(f'sortDirection must be Asc or Desc, got {value!r}')


def _page_headers(total: int, limit: int, offset: int) -> dict[str, str]:
    pages = max(1, -(-total // limit))
    return {'X-PAGE-COUNT': str(pages), 'X-CURRENT-PAGE': str(offset // limit + 1), 'X-PAGE-SIZE': str(limit),
            'X-TOTAL': str(total)}


def _handler(fn: Callable[..., web.Response]) -> Callable[..., Awaitable[web.Response]]:
    """Wrap a route body: verify the signature first, turn refusals into JSON error responses."""
    async def wrapped(self: 'AccountService', request: web.Request) -> web.Response:
        try:
            api_key, body = await self._signed(request)
            return fn(self, request, api_key, body)
        except (SimAuthError, OrderRejected) as exc:
            return _error(exc)
    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


class AccountService:
    """Accounts, signed REST and private-stream hooks of one simulated exchange.

    ``market`` is the market model; ``strict_keys`` (base64 public keys) turns on strict mode,
    where only those keys are accounts; ``starting_balances`` funds each new account;
    ``now_ms`` is the server clock used for signature windows and event times.
    """

    def __init__(self, market: Any, *, strict_keys: Optional[set[str]] = None,
                 starting_balances: Optional[dict[str, str]] = None, now_ms: Callable[[], int],
                 fees: Optional[FeeSchedule] = None):
        self.market = market
        self.now_ms = now_ms
        self.keys = KeyRegistry(strict_keys)
        self.event_sink: Optional[EventSink] = None
        self.engine = AccountEngine(market, clock_us=lambda: now_ms() * 1000, starting_balances=starting_balances,
                                    fees=fees, listener=self._forward)

    def _forward(self, event: AccountEvent) -> None:
        sink = self.event_sink
        if sink is not None:
            sink(event.api_key, event.stream, event.symbol, event.data)

    # ---------------------------------------------------------------- Python API

    def register_key(self, api_key: str) -> None:
        """Admit ``api_key`` in strict mode (no effect in open mode beyond a format check)."""
        self.keys.register(api_key)

    def place_order(self, api_key: str, payload: dict) -> dict:
        """Place an order as ``POST /api/v1/order`` would; returns the REST order object.
        Raises ``OrderRejected`` for what REST answers with an error."""
        return order_to_rest(self.engine.place_order(api_key, payload))

    def cancel_order(self, api_key: str, symbol: str, order_id: Optional[str] = None,
                     client_id: Optional[int] = None) -> dict:
        """Cancel as ``DELETE /api/v1/order`` would; returns the order object (status Cancelled)."""
        return order_to_rest(self.engine.cancel_order(api_key, symbol, order_id, client_id))

    def balances(self, api_key: str) -> dict[str, dict[str, str]]:
        return self.engine.capital(api_key)

    def positions(self, api_key: str, symbol: Optional[str] = None) -> list[dict]:
        return self.engine.positions(api_key, symbol)

    # ---------------------------------------------------------------- WebSocket hooks

    def authorize_ws(self, signature: Any) -> str:
        """The API key of a private SUBSCRIBE's ``signature`` array; ``SimAuthError`` code 4003 otherwise."""
        api_key = verify_ws(signature, self.now_ms(), accounts=self.keys)
        self.engine.account(api_key)
        return api_key

    def snapshot_frames(self, api_key: str, stream: str) -> list[dict]:
        """Frames to push right after a private subscribe: one per open position (no ``e``) for
        ``account.positionUpdate[.<symbol>]``, nothing for other streams."""
        if stream == POSITION_UPDATE:
            return self.engine.position_snapshot_frames(api_key)
        if stream.startswith(POSITION_UPDATE + '.'):
            return self.engine.position_snapshot_frames(api_key, stream[len(POSITION_UPDATE) + 1:])
        return []

    def on_market_trade(self, symbol: str, price: Decimal, quantity: Decimal, taker_side: str, trade_id: int,
                        ts_us: int) -> None:
        """A public trade was printed; resting orders it went through fill."""
        self.engine.on_market_trade(symbol, price, quantity, taker_side, trade_id, ts_us)

    # ---------------------------------------------------------------- REST

    #: The signed endpoints under ``/api/v1/`` (the rest of ``/api/v1/`` is public).
    SIGNED_API_PATHS = ('/api/v1/capital', '/api/v1/position', '/api/v1/order', '/api/v1/orders')

    def add_routes(self, app: web.Application) -> None:
        """Mount the signed endpoints on ``app``."""
        app.router.add_get('/api/v1/capital', self._capital)
        app.router.add_get('/api/v1/position', self._position)
        app.router.add_get('/api/v1/order', self._get_order)
        app.router.add_post('/api/v1/order', self._post_order)
        app.router.add_delete('/api/v1/order', self._delete_order)
        app.router.add_get('/api/v1/orders', self._get_orders)
        app.router.add_post('/api/v1/orders', self._post_orders)
        app.router.add_delete('/api/v1/orders', self._delete_orders)
        app.router.add_get('/wapi/v1/history/fills', self._fill_history)
        app.router.add_get('/wapi/v1/history/orders', self._order_history)

    async def _signed(self, request: web.Request) -> tuple[str, Any]:
        """Verify the request; return (api_key, parsed JSON body or None)."""
        body = await request.read()
        api_key = verify_rest(request.method, request.path, request.query, body, request.headers, self.now_ms(),
                              accounts=self.keys)
        self.engine.account(api_key)
        if not body or not body.strip():
            return api_key, None
        return api_key, json.loads(body, parse_float=Decimal)

    @staticmethod
    def _params(request: web.Request, body: Any) -> Mapping[str, Any]:
        if isinstance(body, dict):
            return body
        if body is not None:
            raise _bad('Request body must be a JSON object')
        return request.query

    def _symbol(self, params: Mapping[str, Any], *, required: bool) -> Optional[str]:
        symbol = params.get('symbol')
        if symbol in (None, ''):
            if required:
                raise _bad('symbol is required')
            return None
        self.engine.meta(symbol)
        return symbol

    @_handler
    def _capital(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        return _json(self.engine.capital(api_key))

    @_handler
    def _position(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        params = request.query
        symbol = self._symbol(params, required=False)
        market_type = _market_type(params)
        rows = [] if market_type == 'SPOT' else self.engine.positions(api_key, symbol)
        return _json(rows)

    def _order_selector(self, params: Mapping[str, Any]) -> tuple[str, Optional[str], Optional[int]]:
        symbol = self._symbol(params, required=True)
        order_id = params.get('orderId')
        client_id = _int_param(params, 'clientId', maximum=2 ** 32 - 1)
        if order_id in ('', None):
            order_id = None
        if (order_id is None) == (client_id is None):
            raise _bad('Specify exactly one of orderId and clientId')
        return symbol, None if order_id is None else str(order_id), client_id

    @_handler
    def _get_order(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        symbol, order_id, client_id = self._order_selector(request.query)
        return _json(order_to_rest(self.engine.find_open_order(api_key, symbol, order_id, client_id)))

    @_handler
    def _post_order(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        if not isinstance(body, dict):
            raise _bad('Request body must be a JSON object with the order')
        return _json(order_to_rest(self.engine.place_order(api_key, body)))

    @_handler
    def _delete_order(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        symbol, order_id, client_id = self._order_selector(self._params(request, body))
        return _json(order_to_rest(self.engine.cancel_order(api_key, symbol, order_id, client_id)))

    @_handler
    def _get_orders(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        params = request.query
        orders = self.engine.open_orders(api_key, self._symbol(params, required=False), _market_type(params))
        return _json([order_to_rest(o) for o in orders])

    @_handler
    def _post_orders(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        if not isinstance(body, list):
            raise _bad('Request body must be a JSON array of orders')
        return _json(self.engine.place_batch(api_key, body))

    @_handler
    def _delete_orders(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        params = self._params(request, body)
        symbol = self._symbol(params, required=True)
        cancelled = self.engine.cancel_all(api_key, symbol, params.get('orderType'))
        return _json([order_to_rest(o) for o in cancelled])

    @staticmethod
    def _page(params: Mapping[str, Any], rows: list) -> tuple[list, dict[str, str]]:
        limit = _int_param(params, 'limit', HISTORY_DEFAULT_LIMIT, minimum=1, maximum=HISTORY_MAX_LIMIT)
        offset = _int_param(params, 'offset', 0)
        return rows[offset:offset + limit], _page_headers(len(rows), limit, offset)

    @_handler
    def _fill_history(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        params = request.query
        fill_type = params.get('fillType')
        from_ms = _int_param(params, 'from')
        to_ms = _int_param(params, 'to')
        if from_ms is not None and to_ms is not None and to_ms < from_ms:
            raise OrderRejected(400, 'INVALID_RANGE', 'to must not be earlier than from')
        fills = self.engine.fill_history(
            api_key, symbol=self._symbol(params, required=False), order_id=params.get('orderId') or None,
            from_ms=from_ms, to_ms=to_ms, market_type=_market_type(params), ascending=_ascending(params))
        if fill_type not in (None, '', *_USER_FILL_TYPES):
            fills = []
        page, headers = self._page(params, fills)
        return _json([fill_to_rest(f) for f in page], headers=headers)

    @_handler
    def _order_history(self, request: web.Request, api_key: str, body: Any) -> web.Response:
        params = request.query
        orders = self.engine.order_history(api_key, symbol=self._symbol(params, required=False),
                                           order_id=params.get('orderId') or None,
                                           market_type=_market_type(params))
        if _ascending(params):
            orders = orders[::-1]
        page, headers = self._page(params, orders)
        return _json([order_to_history(o) for o in page], headers=headers)
