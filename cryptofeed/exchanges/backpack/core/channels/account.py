"""ORDER_INFO, FILLS, POSITIONS, BALANCES: the private account streams, signed, on their own connection.

``AccountChannel`` owns everything private (DESIGN.md D13):

* **Its own WebSocket connection** (``connection()``): a refused signature never touches the
  connections carrying public data.
* **Signed subscribe on every (re)connect** (``subscribe``, run by cryptofeed's connection
  handler after each connect): ``signature: [key, sig, ts, window]`` over
  ``instruction=subscribe``, made afresh each time with the clock offset (backpack-api.md §7).
* **All-market streams**: ``account.orderUpdate``, ``account.positionUpdate`` and
  ``account.balanceUpdate`` carry every market; a channel asked for with symbols is filtered to
  them, one asked for with an empty symbol list gets every market.
* **Catch-up before live data**: ``subscribe`` fetches, before the connection's first frame is
  handled, (1) on a reconnect the fills missed since the last fill seen
  (``/wapi/v1/history/fills``, paged, oldest first, each delivered exactly once thanks to the
  ``FillLedger``), (2) the open orders (``/api/v1/orders``) and, on a reconnect, the final state
  of orders that closed meanwhile (``/wapi/v1/history/orders``), (3) the positions
  (``/api/v1/position``; a position gone since is emitted with size 0), (4) the balances
  (``/api/v1/capital``). Live frames that repeat what REST gave are harmless: fills are
  de-duplicated, orders/positions/balances are states.
* **One bad row loses nothing**: every REST row is checked with the bounds of the account streams
  (``adapters.parse_rest_*``); a row that breaks them is counted (``parse_errors``), logged once
  with its ids, and skipped, and the rows after it and the other catch-ups go on. A skipped row
  is never taken for an absence: the order it describes is not taken for closed, its position
  not for flat, its asset not for empty. A fill is recorded in the ledger only once delivered; a
  skipped fill row makes the next ``_FILL_ROW_RETRIES`` catch-ups read the history again from its
  time, so a row damaged in one answer only is still delivered (late, once), and one that stays
  damaged is given up with a warning. Live frames with such values are refused by the decoder
  (``messages.py``) and counted in the same way, so none reaches a callback or this state.
* **Clock**: the offset to the exchange is measured with ``/api/v1/time`` at start and after
  an authentication failure, unless ``clock_offset_ms`` was configured (that value is kept).
* **Authentication failures** (error frame 4003, a close right after subscribing, 401/403 on
  the signed REST calls): counted (``auth_failures``), shown by ``health()`` until private data
  flows again, logged as one ``BackpackAuthError`` per cause, retried after a capped backoff.
* Optional **balance reconciliation** every ``reconcile_interval_s``: ``/api/v1/capital`` is
  compared with the balances emitted; each difference is emitted and counted.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.defines import BALANCES, FILLS, OPEN, ORDER_INFO, PARTIAL, PENDING, POSITIONS
from cryptofeed.exchanges.backpack.core import records

from cryptofeed.exchanges.backpack.core.wire import parse as adapters
from cryptofeed.exchanges.backpack.core.sync.account import (
    AUTH_CAUSES, EXPIRED, WS_REJECTED, FillLedger, classify_auth_failure, estimate_offset_ms, fill_key,
)
from cryptofeed.exchanges.backpack.core.transport.backoff import backoff_delays
from cryptofeed.exchanges.backpack.core.channels.context import DONE, ChannelContext
from cryptofeed.exchanges.backpack.core.errors import BackpackAuthError, BackpackConfigError, BackpackError
from cryptofeed.exchanges.backpack.core.rest.client import request_outlived_window
from cryptofeed.exchanges.backpack.core.symbols import exchange_to_normalized

__all__ = ['AccountChannel', 'PRIVATE_CHANNELS', 'PRIVATE_STREAMS', 'CLOSED_AFTER_SUBSCRIBE', 'private_channels_asked']

LOG = log.get()

PRIVATE_CHANNELS = (ORDER_INFO, FILLS, POSITIONS, BALANCES)
PRIVATE_STREAMS = {ORDER_INFO: 'account.orderUpdate', FILLS: 'account.orderUpdate',
                   POSITIONS: 'account.positionUpdate', BALANCES: 'account.balanceUpdate'}
"""cryptofeed channel -> the all-market Backpack stream that carries it."""

CLOSED_AFTER_SUBSCRIBE = 'closed_after_subscribe'
#: A private connection the exchange closes (Close frame) this soon after a signed subscribe,
#: before any private frame, counts as the exchange refusing the signature. A dropped TCP
#: connection (no Close frame) does not.
CLOSED_AFTER_SUBSCRIBE_S = 3.0
_HISTORY_PAGE = 1000
_BACKFILL_MARGIN_MS = 1000
_FILL_ROW_RETRIES = 3        # catch-ups that read the history again from a skipped fill row
_BAD_ROWS_REMEMBERED = 1000  # bound on the rows remembered as logged / given up
_FILLS_PATH = '/wapi/v1/history/fills'
_ORDER_HISTORY_PATH = '/wapi/v1/history/orders'
_OPEN_STATES = frozenset({OPEN, PARTIAL, PENDING})
_ZERO = Decimal(0)


class AccountChannel:
    """The private channels asked for (see the module docstring).

    ``wanted`` maps cryptofeed channels to normalized symbols (an empty set: every market);
    ``signers`` are the signers to keep on the measured clock offset (the first one signs the
    subscribe); ``measure_clock`` is False when the configuration fixed ``clock_offset_ms``.
    """

    def __init__(self, ctx: ChannelContext, wanted: Mapping[str, Iterable[str]], *, signer: Any,
                 measure_clock: bool = True, retry_base_s: float = 0.5, retry_max_s: float = 30.0,
                 reconcile_interval_s: Optional[float] = None, fill_memory: int = 100_000):
        if reconcile_interval_s is not None and reconcile_interval_s <= 0:
            raise ValueError(f'reconcile_interval_s must be > 0 (or None to disable), got {reconcile_interval_s}')
        self.ctx = ctx
        self.signer = signer
        self.measure_clock = measure_clock
        self.reconcile_interval_s = reconcile_interval_s
        self.filters: Dict[str, Optional[frozenset]] = {
            channel: (frozenset(wanted[channel]) or None) for channel in PRIVATE_CHANNELS if channel in wanted}
        self.streams: List[str] = sorted({PRIVATE_STREAMS[c] for c in self.filters})
        self.ledger = FillLedger(fill_memory)
        self._counts = ctx.metrics.messages
        self._counts.update(dict.fromkeys(self.filters, 0))
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._delays = backoff_delays(retry_base_s, retry_max_s, jitter='equal')
        self._failed = False                 # the last attempt was refused: wait before the next
        self._cause: Optional[str] = None    # why, while it lasts
        self.stopping = False
        self._reported: set = set()          # causes already logged as errors
        self._clock_measured = False
        self._clock_rtt_ms: Optional[int] = None   # round trip of the last /api/v1/time
        self._subscribes = 0
        self._since_ms: Optional[int] = None  # exchange time of the first subscribe
        self._subscribed_at: Optional[float] = None
        self._frames_since_subscribe = 0
        self.order_types: 'OrderedDict[str, str]' = OrderedDict()   # order id -> cryptofeed order type
        self.open_orders: Dict[str, Any] = {}                       # order id -> last OrderInfo while open
        self.positions: Dict[str, records.Position] = {}                    # symbol -> last non-flat Position
        self.balances: Dict[str, records.Balance] = {}                      # asset -> last Balance emitted
        self.backfilled_fills = 0
        self._bad_rows: set = set()                                 # (path, problem) of rows already logged
        self._fill_retries: Dict[str, list] = {}                    # skipped fill row -> [time ms, catch-ups left]
        self._fills_given_up: set = set()

    def handlers(self):
        return {'account.orderUpdate': self.on_order, 'account.positionUpdate': self.on_position,
                'account.balanceUpdate': self.on_balance}

    def subscription(self) -> Dict[str, List[str]]:
        """What the host's dedicated private connection carries; the host calls ``on_close`` on
        that connection's every close, saying whether the exchange closed it (a Close frame)."""
        return {'account': list(self.streams)}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.reconcile_interval_s is not None and BALANCES in self.filters:
            self.ctx.spawn(self._reconcile_loop(), loop)

    def _wants(self, channel: str, symbol: Optional[str]) -> bool:
        if channel not in self.filters:
            return False
        allowed = self.filters[channel]
        return allowed is None or symbol in allowed

    # ---------------------------------------------------------------- (re)subscribe

    async def subscribe(self, conn) -> None:
        """Runs on every (re)connect of the private connection; see the module docstring."""
        if self._failed:
            delay = next(self._delays)
            LOG.info('%s: private channels: retrying authentication in %.1f s', self.ctx.exchange_id, delay)
            await asyncio.sleep(delay)
        try:
            if self.measure_clock and (not self._clock_measured or self._failed):
                await self._measure_clock()
            reconnect = self._subscribes > 0
            self._subscribes += 1
            if self._since_ms is None:
                self._since_ms = self.signer.now_ms()
            await conn.write(json.dumps({'method': 'SUBSCRIBE', 'params': self.streams,
                                         'signature': self.signer.ws_signature()}))
            self._subscribed_at = time.monotonic()
            self._frames_since_subscribe = 0
            await self._catch_up(reconnect)
        except BackpackAuthError as exc:
            cause = classify_auth_failure(getattr(exc, 'code', None), str(exc))
            used = self.signer.clock_offset_ms
            # An expired request: a request slower than its window expired on the way (the clocks
            # are measured to say so, not to sign with an estimate the same slowness biases); else
            # it is a clock problem: say by how much, measured now.
            slow = cause == EXPIRED and request_outlived_window(exc)
            measured = await self._measure_clock(apply=self.measure_clock and not slow) if cause == EXPIRED else None
            self._auth_failed(cause, str(exc), used_offset=used, measured_offset=measured,
                              slow=(exc.elapsed_ms, exc.window_ms) if slow else None)
            raise
        except BackpackError:
            # The catch-up failed (an error status, the breaker open, an unreadable answer): counted
            # like every REST failure of the feed, so health sees a catch-up that keeps failing.
            # The connection reconnects and the next subscribe catches up again.
            self.ctx.metrics.on_rest_failure()
            raise
        if self._failed:
            # REST accepted the signature; the stream has CLOSED_AFTER_SUBSCRIBE_S to refuse it too.
            self._failed = False
            self.ctx.spawn(self._confirm(self._subscribes))

    async def _measure_clock(self, apply: bool = True) -> Optional[int]:
        """Exchange clock minus ours from ``/api/v1/time`` (None if unreadable); ``apply``: sign with it."""
        rest = self.ctx.rest
        try:
            sent = time.time()
            server_ms = await rest.server_time_ms()
            received = time.time()
        except BackpackError as exc:
            LOG.warning('%s: could not read /api/v1/time (%s); signing with the previous clock offset',
                        self.ctx.exchange_id, exc)
            return None
        offset = estimate_offset_ms(sent, server_ms, received)
        self._clock_rtt_ms = round((received - sent) * 1000)
        if not apply:
            return offset
        self._clock_measured = True
        for signer in {id(s): s for s in (self.signer, getattr(rest, 'signer', None)) if s is not None}.values():
            signer.clock_offset_ms = offset
        if abs(offset) >= 1000:
            LOG.warning('%s: %s; signing with that offset', self.ctx.exchange_id, _describe_offset(offset))
        return offset

    async def _catch_up(self, reconnect: bool) -> None:
        history: List[tuple] = []
        known = set(self.order_types)      # orders seen before this (re)subscribe
        if reconnect and (ORDER_INFO in self.filters or FILLS in self.filters):
            history = self._order_rows(await self.ctx.rest.order_history(limit=_HISTORY_PAGE), _ORDER_HISTORY_PATH)
            for row, _, _ in history:
                self._note_type(str(row['id']), row['orderType'], row.get('triggerPrice'))
        if reconnect and FILLS in self.filters:
            await self._backfill_fills()
        if ORDER_INFO in self.filters:
            await self._snapshot_orders(history, known if reconnect else None)
        if POSITIONS in self.filters:
            await self._snapshot_positions()
        if BALANCES in self.filters:
            await self._snapshot_balances()

    async def _backfill_fills(self) -> None:
        since = self.ledger.last_ms if self.ledger.last_ms is not None else self._since_ms
        if self._fill_retries:
            since = min([since] + [entry[0] for entry in self._fill_retries.values()])
        rows: List[Any] = []
        offset = 0
        while True:
            page = _rows(await self.ctx.rest.fill_history(
                from_ms=max(0, since - _BACKFILL_MARGIN_MS), limit=_HISTORY_PAGE, offset=offset,
                sort_direction='Asc'), _FILLS_PATH)
            rows.extend(page)
            if len(page) < _HISTORY_PAGE:
                break
            offset += _HISTORY_PAGE
        entries = []
        skipped: Dict[str, int] = {}
        for row in rows:
            try:
                symbol = _row_symbol(row)
                fill = adapters.parse_rest_fill(row, symbol, self.order_types.get(str(row.get('orderId'))),
                                                row if self.ctx.keep_raw else None)
            except ValueError as exc:
                self._bad_row(_FILLS_PATH, exc)
                skipped[_fill_row_identity(row)] = _row_ms(row, since)
                continue
            entries.append((fill_key(fill.id, fill.order_id), round(fill.timestamp * 1000), fill))
        self._note_skipped_fills(skipped)
        delivered = 0
        for key, time_ms, fill in self.ledger.pending(entries):
            if self._wants(FILLS, fill.symbol):
                await self.ctx.deliver(FILLS, fill, time.time())
                delivered += 1
            self.ledger.record(key, time_ms)    # only now: a fill not delivered is not taken for one
        if delivered:
            LOG.info('%s: %d fills made while the private connection was down delivered from history',
                     self.ctx.exchange_id, delivered)
        self.backfilled_fills += delivered
        self.ctx.metrics.backfilled_fills += delivered

    async def _snapshot_orders(self, history: List[tuple], known: Optional[set]) -> None:
        """Emit every open order; on a reconnect (``known``: the order ids seen before it) first the
        final state of the orders that closed meanwhile: those that were open, and those never seen
        that were created since the first subscribe. ``history``: the checked rows of the order
        history (``_order_rows``). A skipped open-order row whose id is readable still counts as
        open: the order is not taken for closed."""
        receipt = time.time()
        answer = _rows(await self.ctx.rest.open_orders(), '/api/v1/orders')
        open_ids = {str(row['id']) for row in answer if isinstance(row, dict) and _readable_id(row.get('id'))}
        rows = self._order_rows(answer, '/api/v1/orders')
        if known is not None:
            by_id = {str(item[0]['id']): item for item in history}
            for order_id in list(self.open_orders):
                if order_id not in open_ids and order_id not in by_id:
                    found = self._order_rows(await self.ctx.rest.order_history(order_id=order_id, limit=1),
                                             _ORDER_HISTORY_PATH)
                    if found:
                        by_id[order_id] = found[0]
            since_s = (self._since_ms or 0) / 1000 - _BACKFILL_MARGIN_MS / 1000
            closed = [item for order_id, item in by_id.items() if order_id not in open_ids and (
                order_id in self.open_orders or (order_id not in known and item[2] >= since_s))]
            rows = sorted(closed, key=lambda item: item[2]) + rows
        for row, symbol, _ in rows:
            self._note_type(str(row['id']), row['orderType'], row.get('triggerPrice'))
            info = adapters.parse_rest_order(row, symbol, receipt, row if self.ctx.keep_raw else None)
            await self._emit_order(info, symbol, receipt)

    def _order_rows(self, answer: Any, path: str) -> List[tuple]:
        """``(row, symbol, created seconds)`` of each order row of ``answer`` within the bounds; the
        others are counted, logged and left out (``created``: history rows only, else 0)."""
        out = []
        for row in _rows(answer, path):
            try:
                symbol = _row_symbol(row)
                adapters.parse_rest_order(row, symbol, 0.0)
                created = adapters.history_time(row.get('createdAt'), 'createdAt') if path == _ORDER_HISTORY_PATH \
                    else 0.0
            except ValueError as exc:
                self._bad_row(path, exc)
                continue
            out.append((row, symbol, created))
        return out

    async def _snapshot_positions(self) -> None:
        receipt = time.time()
        seen = set()
        for row in _rows(await self.ctx.rest.positions(), '/api/v1/position'):
            if isinstance(row, dict) and isinstance(row.get('symbol'), str):
                seen.add(_normalized(row['symbol']))   # a skipped row is not a position closed
            try:
                symbol = _row_symbol(row)
                previous = self.positions.get(symbol)
                position = adapters.parse_rest_position(row, symbol, receipt, row if self.ctx.keep_raw else None,
                                                        previous_side=None if previous is None else previous.side)
            except ValueError as exc:
                self._bad_row('/api/v1/position', exc)
                continue
            await self._emit_position(position, receipt)
        for symbol, previous in list(self.positions.items()):
            if symbol not in seen:  # closed while we were away
                await self._emit_position(records.Position(adapters.EXCHANGE, symbol, _ZERO, previous.entry_price,
                                                   previous.side, _ZERO, receipt), receipt)

    async def _snapshot_balances(self, only_changes: bool = False) -> int:
        """``/api/v1/capital`` -> BALANCES (every asset, or ``only_changes``: those that differ from
        what was emitted last); an asset gone from the answer is emitted as zero. Returns how
        many differed."""
        receipt = time.time()
        data = await self.ctx.rest.balances()
        if not isinstance(data or {}, dict):
            raise BackpackError(f'/api/v1/capital answered a {type(data).__name__}, not a map of assets')
        fresh: Dict[str, Any] = {}
        skipped = set()
        for asset, entry in sorted((data or {}).items()):
            try:
                fresh[asset] = adapters.parse_capital_entry(asset, entry, keep_raw=self.ctx.keep_raw)
            except ValueError as exc:
                self._bad_row('/api/v1/capital', exc)
                skipped.add(asset)              # not emptied: its last balance stands
        for asset in self.balances:
            if asset not in skipped:
                fresh.setdefault(asset, records.Balance(adapters.EXCHANGE, asset, _ZERO, _ZERO, None))
        changed = 0
        for asset, balance in sorted(fresh.items()):
            previous = self.balances.get(asset)
            differs = previous is None or (previous.balance, previous.reserved) != (balance.balance, balance.reserved)
            changed += differs
            self.balances[asset] = balance
            if differs or not only_changes:
                await self.ctx.deliver(BALANCES, balance, receipt)
        return changed

    def _bad_row(self, path: str, exc: ValueError) -> None:
        """A REST row out of bounds: counted as a parse error, logged once (its ids are in ``exc``)."""
        metrics = self.ctx.metrics
        metrics.on_dropped()
        metrics.on_parse_error()
        key = (path, str(exc))
        if key in self._bad_rows:
            LOG.debug('%s: skipped the malformed REST row of %s again: %s', self.ctx.exchange_id, path, exc)
            return
        if len(self._bad_rows) >= _BAD_ROWS_REMEMBERED:
            self._bad_rows.clear()
        self._bad_rows.add(key)
        LOG.warning('%s: skipped a malformed REST row of %s: %s; the other rows are delivered (counted in '
                    'parse_errors)', self.ctx.exchange_id, path, exc)

    def _note_skipped_fills(self, skipped: Dict[str, int]) -> None:
        """Keep the next catch-ups reading the history from the fill rows just skipped (identity ->
        time ms), ``_FILL_ROW_RETRIES`` times; a row skipped that often is given up."""
        retries = self._fill_retries
        for identity in [i for i in retries if i not in skipped]:
            del retries[identity]               # read clean (and delivered) this time, or gone
        for identity, time_ms in skipped.items():
            entry = retries.get(identity)
            if entry is None:
                if identity not in self._fills_given_up:
                    retries[identity] = [time_ms, _FILL_ROW_RETRIES]
                continue
            entry[1] -= 1
            if entry[1] <= 0:
                del retries[identity]
                if len(self._fills_given_up) >= _BAD_ROWS_REMEMBERED:
                    self._fills_given_up.clear()
                self._fills_given_up.add(identity)
                LOG.warning('%s: giving up on the fill history row %s: still malformed after %d more catch-ups',
                            self.ctx.exchange_id, identity, _FILL_ROW_RETRIES)

    async def _reconcile_loop(self) -> None:
        """Every ``reconcile_interval_s``: compare REST balances with what was emitted."""
        while True:
            await asyncio.sleep(self.reconcile_interval_s)
            if self._subscribes == 0 or self._failed:
                continue
            try:
                corrections = await self._reconcile_once()
            except BackpackAuthError as exc:
                self._auth_failed(classify_auth_failure(getattr(exc, 'code', None), str(exc)), str(exc),
                                  used_offset=self.signer.clock_offset_ms)
                continue
            except BackpackError as exc:
                self.ctx.metrics.on_rest_failure()
                LOG.warning('%s: balance reconciliation failed (%s)', self.ctx.exchange_id, exc)
                continue
            if corrections:
                LOG.warning('%s: balance reconciliation corrected %d balances', self.ctx.exchange_id, corrections)

    async def _reconcile_once(self) -> int:
        """One reconciliation: emits only the balances that differ; returns how many."""
        corrections = await self._snapshot_balances(only_changes=True)
        self.ctx.metrics.reconciliation_corrections += corrections
        return corrections

    # ---------------------------------------------------------------- live frames

    def _seen_frame(self, channel: str, receipt_ts: float) -> None:
        self._counts[channel] = self._counts.get(channel, 0) + 1
        self._frames_since_subscribe += 1
        metrics = self.ctx.metrics
        metrics.last_private_message_time = receipt_ts
        if self._cause is not None or metrics.auth_error is not None:
            self._auth_ok()

    def _auth_ok(self) -> None:
        """Authentication works again: health clears; a new failure is worth a new report."""
        self.ctx.metrics.on_auth_ok()
        self._failed = False
        self._cause = None
        self._reported.clear()
        self._delays = backoff_delays(self._retry_base_s, self._retry_max_s, jitter='equal')

    async def _confirm(self, attempt: int) -> None:
        await asyncio.sleep(CLOSED_AFTER_SUBSCRIBE_S)
        if self._subscribes == attempt and not self._failed and self._cause is not None:
            LOG.info('%s: private channels authenticated again', self.ctx.exchange_id)
            self._auth_ok()

    def on_order(self, msg, symbol: str, _variant, receipt_ts: float):
        """Counted under ORDER_INFO; an ``orderFill`` frame under FILLS as well."""
        self._seen_frame(ORDER_INFO, receipt_ts)
        if msg.t is not None:
            self._counts[FILLS] = self._counts.get(FILLS, 0) + 1
        return self._on_order(msg, symbol, receipt_ts)

    async def _on_order(self, msg, symbol: str, receipt_ts: float) -> None:
        ctx = self.ctx
        raw = ctx.raw(msg)
        info = adapters.parse_order_update(msg, symbol, receipt_ts, raw)
        self._note_type(msg.i, msg.o, msg.P)
        await self._emit_order(info, symbol, receipt_ts)
        fill = adapters.parse_fill(msg, symbol, receipt_ts, raw)
        if fill is not None:
            key = fill_key(fill.id, fill.order_id)
            if not self.ledger.delivered(key):
                if self._wants(FILLS, symbol):
                    await ctx.deliver(FILLS, fill, receipt_ts)
                self.ledger.record(key, msg.T // 1000)   # once delivered

    async def _emit_order(self, info, symbol: str, receipt_ts: float) -> None:
        if info.status in _OPEN_STATES:
            self.open_orders[info.id] = info
        else:
            self.open_orders.pop(info.id, None)
        if self._wants(ORDER_INFO, symbol):
            await self.ctx.deliver(ORDER_INFO, info, receipt_ts)

    def on_position(self, msg, symbol: str, _variant, receipt_ts: float):
        self._seen_frame(POSITIONS, receipt_ts)
        previous = self.positions.get(symbol)
        position = adapters.parse_position(msg, symbol, receipt_ts, self.ctx.raw(msg),
                                           previous_side=None if previous is None else previous.side)
        return self._emit_position(position, receipt_ts)

    async def _emit_position(self, position: records.Position, receipt_ts: float) -> None:
        if position.position == 0:
            self.positions.pop(position.symbol, None)
        else:
            self.positions[position.symbol] = position
        if self._wants(POSITIONS, position.symbol):
            await self.ctx.deliver(POSITIONS, position, receipt_ts)

    def on_balance(self, msg, _symbol, _variant, receipt_ts: float):
        self._seen_frame(BALANCES, receipt_ts)
        balance = adapters.parse_balance_update(msg, receipt_ts, self.ctx.raw(msg))
        self.balances[balance.currency] = balance
        if BALANCES in self.filters:
            return self.ctx.deliver(BALANCES, balance, receipt_ts)
        return DONE

    def _note_type(self, order_id: str, order_type: str, trigger_price: Any) -> None:
        self.order_types[str(order_id)] = adapters.order_type(order_type, trigger_price)
        if len(self.order_types) > 10_000:
            self.order_types.popitem(last=False)

    # ---------------------------------------------------------------- authentication failures

    def on_error_frame(self, error, receipt_ts: float):
        """A server error frame on the private connection (the router's ``on_error``)."""
        self.ctx.metrics.on_server_error()
        code, message = error.error.code, error.error.message
        if str(code) != '4003':
            LOG.warning('%s: private connection: server error %s: %s', self.ctx.exchange_id, code, message)
            return None
        self._auth_failed(WS_REJECTED, f'error frame {code}: {message}')
        return self._refused(f'Backpack refused the private subscribe: error {code} {message}')

    @staticmethod
    async def _refused(text: str) -> None:
        raise BackpackAuthError(text)   # the connection handler reconnects; subscribe() waits first

    def on_close(self, closed_by_exchange: bool) -> None:
        if self._subscribed_at is None or self._failed or self.stopping or not closed_by_exchange:
            return
        if self._frames_since_subscribe == 0 and time.monotonic() - self._subscribed_at < CLOSED_AFTER_SUBSCRIBE_S:
            self._auth_failed(CLOSED_AFTER_SUBSCRIBE, 'the connection was closed right after the signed subscribe')

    def _auth_failed(self, cause: str, detail: str, *, used_offset: Optional[int] = None,
                     measured_offset: Optional[int] = None, slow: Optional[tuple] = None) -> None:
        """Count, mark health, log once per cause; the next ``subscribe`` waits and re-measures."""
        self._failed = True
        self._cause = cause
        self._subscribed_at = None
        meaning = AUTH_CAUSES.get(cause, 'the exchange closed the private connection right after the signed '
                                         'subscribe (a refused signature)')
        reason = f'{cause}: {meaning}'
        if slow is not None:  # (elapsed ms, window ms): it expired on the way
            reason = (f'{cause}: the signed request took {slow[0]} ms from signing to the exchange\'s answer, longer '
                      f'than its signature window of {slow[1]} ms (window_ms), so it expired on the way')
            if measured_offset is not None:
                reason += f'; clocks measured now: {_describe_offset(measured_offset, self._clock_rtt_ms)}'
            reason += ('; raise window_ms (at most 10000) or find what slows the requests (network, proxy, a loaded '
                       'machine)')
        elif cause == EXPIRED:
            reason += f'; it was signed with a clock offset of {used_offset} ms (exchange minus this machine)'
            if measured_offset is not None:
                reason += f'; measured now: {_describe_offset(measured_offset, self._clock_rtt_ms)}'
            reason += ('; the next attempt signs with the measured offset' if self.measure_clock else
                       '; that offset is fixed by clock_offset_ms: remove it to let the feed measure the offset, '
                       'or sync this machine\'s clock')
        self.ctx.metrics.on_auth_failure(reason)
        if cause not in self._reported:
            self._reported.add(cause)
            error = BackpackAuthError(f'private channels: {reason} ({detail}); public channels are not affected; '
                                      f'retrying with a capped backoff')
            LOG.error('%s: %s: %s', self.ctx.exchange_id, type(error).__name__, error)
        else:
            LOG.debug('%s: private channels: authentication failed again (%s)', self.ctx.exchange_id, cause)

    # ---------------------------------------------------------------- observability

    def state(self) -> Dict[str, Any]:
        return {'streams': list(self.streams), 'subscribes': self._subscribes, 'fills_seen': len(self.ledger),
                'duplicate_fills': self.ledger.duplicates, 'backfilled_fills': self.backfilled_fills,
                'open_orders': len(self.open_orders), 'positions': len(self.positions),
                'clock_offset_ms': getattr(self.signer, 'clock_offset_ms', None)}


def _describe_offset(offset_ms: int, rtt_ms: Optional[int] = None) -> str:
    """The measured offset in words. Within half the measurement's round trip (plus the 1 ms the
    exchange's time is given in) it is no skew: a slow answer is not a clock that is off."""
    if offset_ms == 0:
        return "this machine's clock agrees with the exchange's"
    if rtt_ms is not None and abs(offset_ms) <= rtt_ms / 2 + 1:
        return (f"this machine's clock agrees with the exchange's within the measurement's precision "
                f"({offset_ms:+d} ms, +/-{rtt_ms // 2 + 1} ms: the /api/v1/time round trip took {rtt_ms} ms)")
    side = 'behind' if offset_ms > 0 else 'ahead of'
    return f"this machine's clock is {abs(offset_ms)} ms {side} the exchange's (/api/v1/time)"


def _normalized(exchange_symbol: str) -> Optional[str]:
    try:
        return exchange_to_normalized(exchange_symbol)
    except (ValueError, TypeError):
        return None


def _rows(answer: Any, path: str) -> list:
    """The rows of a REST answer (a list; null is none); anything else fails the whole catch-up."""
    if answer is None:
        return []
    if not isinstance(answer, list):
        raise BackpackError(f'{path} answered a {type(answer).__name__}, not a list of rows')
    return answer


def _readable_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and value != ''


def _row_symbol(row: Any) -> str:
    """The normalized symbol of a REST row; ``ValueError`` (naming the row) when it has none."""
    if not isinstance(row, dict):
        raise ValueError(f'row ({adapters.row_ids(row)}): not an object')
    symbol = row.get('symbol')
    normalized = _normalized(symbol) if isinstance(symbol, str) else None
    if normalized is None:
        raise ValueError(f'row ({adapters.row_ids(row)}): symbol {str(symbol)[:40]!r} is not a Backpack market')
    return normalized


def _fill_row_identity(row: Any) -> str:
    """What identifies a skipped fill row from one catch-up to the next: its ids and time, as sent."""
    when = row.get('timestamp') if isinstance(row, dict) else None
    return f'({adapters.row_ids(row)}, timestamp {str(when)[:40]})'


def _row_ms(row: Any, default: int) -> int:
    """The time of a fill row in ms, or ``default`` when it has no readable one."""
    try:
        return round(adapters.history_time(row.get('timestamp')) * 1000)
    except (AttributeError, ValueError):
        return default


def private_channels_asked(wanted: Mapping[str, Iterable[str]], cfg: Any) -> Dict[str, set]:
    """The private channels in ``wanted`` (channel -> symbols), checked against the configuration:
    a ``BackpackConfigError`` says which setting to add when they cannot work."""
    asked = {channel: set(symbols) for channel, symbols in wanted.items() if channel in PRIVATE_CHANNELS}
    if not asked:
        return asked
    names = ', '.join(sorted(c.upper() for c in asked))
    missing = []
    if not cfg.enable_private_channels:
        missing.append('enable_private_channels=True')
    if cfg.auth is None:
        missing.append("auth={'private_key': ...} (in a backpack: section, key_secret; in the environment, "
                       "BACKPACK_PRIVATE_KEY)")
    if missing:
        raise BackpackConfigError(f'{names} are private account channels: add {" and ".join(missing)} to the '
                                  f'BackpackConfig, or leave these channels out')
    return asked
