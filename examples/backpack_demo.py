"""Backpack through cryptofeed in one command: ``make demo`` (offline) or ``make demo-live``.

Offline (default) it starts the bundled simulator in a child process (TLS on loopback, its own
CA), then runs a cryptofeed ``FeedHandler`` with a ``BackpackFeed`` on a few symbols and
channels, printing trades, the top of each book, tickers, funding and one-minute candles as
they arrive (a one-minute candle closes at most once in a 20 s run, so the candle still forming
is shown too, every few seconds, marked ``forming``; ``closed`` ones are printed as they close).
The account side
runs too: the simulator accepts any well-formed key, so the demo generates one, turns on the
private channels (ORDER_INFO, FILLS, POSITIONS, BALANCES for every market), places and cancels
a few orders with signed REST and prints what the private streams report. After ``--seconds``
(default 20) or Ctrl-C it prints a summary: frames and callbacks per channel, the state of each
book, the account connection and the feed's health.

``--live`` points the same feed at the real exchange (needs network access and a location
Backpack serves).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import logging
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator, Optional

from cryptofeed import FeedHandler
from cryptofeed.defines import CANDLES, FUNDING, L2_BOOK, TICKER, TRADES

from cryptofeed.exchanges.backpack import (
    BALANCES, FILLS, ORDER_INFO, POSITIONS, BackpackConfig, BackpackFeed, run_handler,
)
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient

SYMBOLS = ['SOL-USDC', 'BTC-USDC', 'SOL-USDC-PERP']
CANDLE_INTERVAL = '1m'


def num(value) -> str:
    """A Decimal as plain text without trailing zeros (``0.0`` and ``0`` both read ``0``)."""
    if value is None:
        return '-'
    if isinstance(value, Decimal):
        return format(value.normalize(), 'f')
    return str(value)


def clock(ts: float) -> str:
    """An epoch time as UTC ``HH:MM:SS``."""
    return time.strftime('%H:%M:%S', time.gmtime(ts))


@contextmanager
def simulator(rate: int) -> Iterator[dict]:
    """The simulator CLI in a child process; yields its ``{rest_url, ws_url, ca_file}`` line."""
    markets = ','.join(s.replace('-', '_') for s in SYMBOLS)
    proc = subprocess.Popen([sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator', '--tls',
                             '--rate', str(rate), '--markets', markets], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f'the simulator did not start (exit code {proc.wait()})')
        yield json.loads(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Printer:
    """Callbacks that print, throttled so the terminal stays readable."""

    def __init__(self, every_s: float):
        self.every_s = every_s
        self.last: dict = {}
        self.counts: dict = {}

    def _due(self, key, every_s: Optional[float] = None) -> bool:
        now = time.monotonic()
        if now - self.last.get(key, 0) < (self.every_s if every_s is None else every_s):
            return False
        self.last[key] = now
        return True

    def _count(self, channel: str) -> None:
        self.counts[channel] = self.counts.get(channel, 0) + 1

    async def trade(self, t, receipt_ts):
        self._count(TRADES)
        print(f'TRADE   {t.symbol:<15} {t.side:<4} {t.amount:>12} @ {t.price:<12} id={t.id}')

    async def book(self, book, receipt_ts):
        self._count(L2_BOOK)
        if self._due((L2_BOOK, book.symbol)):
            bid = book.book.bids.index(0) if len(book.book.bids) else ('-', '-')
            ask = book.book.asks.index(0) if len(book.book.asks) else ('-', '-')
            print(f'BOOK    {book.symbol:<15} bid {bid[1]} @ {bid[0]}  |  ask {ask[1]} @ {ask[0]}  '
                  f'(seq {book.sequence_number}, {len(book.book.bids)}x{len(book.book.asks)} levels)')

    async def ticker(self, t, receipt_ts):
        self._count(TICKER)
        if self._due((TICKER, t.symbol)):
            print(f'TICKER  {t.symbol:<15} bid {t.bid}  ask {t.ask}')

    async def candle(self, c, receipt_ts):
        self._count(CANDLES)
        # The feed runs with candle_closed_only=False: the forming candle is shown every few
        # seconds, each closed one as it closes.
        if c.closed or self._due((CANDLES, c.symbol), every_s=5.0):
            print(f'CANDLE  {c.symbol:<15} {c.interval} {clock(c.start)} UTC o={num(c.open)} h={num(c.high)} '
                  f'l={num(c.low)} c={num(c.close)} v={num(c.volume)} ({"closed" if c.closed else "forming"})')

    async def order(self, o, receipt_ts):
        self._count(ORDER_INFO)
        if o.type == 'market':
            # A market order has no limit price: before a fill it is "at market", then the
            # feed reports its average executed price.
            price = 'at market' if not o.price else f'avg {num(o.price)}'
        else:
            price = f'@ {num(o.price)}'
        print(f'ORDER   {o.symbol:<15} {o.side:<4} {o.type:<6} {o.status:<9} {num(o.amount)} {price} '
              f'remaining {num(o.remaining)} id={o.id}')

    async def fill(self, f, receipt_ts):
        self._count(FILLS)
        print(f'FILL    {f.symbol:<15} {f.side:<4} {num(f.amount)} @ {num(f.price)} fee {num(f.fee)} {f.raw["fee_asset"]} '
              f'{f.liquidity} trade={f.id} order={f.order_id}')

    async def position(self, p, receipt_ts):
        self._count(POSITIONS)
        print(f'POSITION {p.symbol:<14} {p.side:<5} {num(p.position)} entry {num(p.entry_price)} '
              f'upnl {num(p.unrealised_pnl)}')

    async def balance(self, b, receipt_ts):
        self._count(BALANCES)
        print(f'BALANCE {b.currency:<15} {num(b.balance)} (reserved {num(b.reserved)})')

    async def funding(self, f, receipt_ts):
        self._count(FUNDING)
        if self._due((FUNDING, f.symbol)):
            print(f'FUNDING {f.symbol:<15} mark {num(f.mark_price)} rate {num(f.rate)} '
                  f'next {clock(f.next_funding_time)} UTC')


def channel_frames(feed: BackpackFeed, channels) -> dict:
    """Frames received per cryptofeed channel of ``channels`` (those subscribed). The metrics
    count a stream that two channels share (``markPrice``: FUNDING and INDEX) under the stream's
    name; it is given to the subscribed channels that read it."""
    readers: dict = {}
    for channel in channels:
        readers.setdefault(feed.websocket_channels[channel], []).append(channel)
    frames: dict = {}
    for name, count in feed.metrics_snapshot()['messages'].items():
        for channel in ([name] if name in feed.websocket_channels else readers.get(name, [name])):
            frames[channel] = frames.get(channel, 0) + count
    return frames


def summary(feed: BackpackFeed, printer: Printer, seconds: float, channels) -> str:
    m = feed.metrics_snapshot()
    frames = channel_frames(feed, channels)
    lines = ['', f'=== summary after {seconds:g} s ===', f'{"channel":<14} {"frames":>7} {"callbacks":>10}']
    for channel in sorted(set(frames) | set(printer.counts)):
        if not frames.get(channel) and not printer.counts.get(channel):
            continue
        note = ''
        if channel == CANDLES:
            note = (f'   {CANDLE_INTERVAL} candles, one per kline frame; the forming one printed every 5 s, '
                    f'closed ones always')
        elif channel == BALANCES:
            note = '   the /api/v1/capital snapshot at subscribe, then one per changed asset'
        lines.append(f'{channel:<14} {frames.get(channel, 0):>7} {printer.counts.get(channel, 0):>10}{note}')
    lines.append(f'frames dropped {m["dropped"]}, parse errors {m["parse_errors"]}; reconnects {m["reconnects"]}, '
                 f'gaps {m["gaps"]}, resyncs {m["resyncs"]}, backfilled trades {m["backfilled_trades"]}')
    if 'account' in m:
        a = m['account']
        lines.append(f'account: {a["subscribes"]} subscribe(s) to {", ".join(a["streams"])}; fills seen '
                     f'{a["fills_seen"]} (duplicates dropped {a["duplicate_fills"]}), open orders {a["open_orders"]}, '
                     f'positions {a["positions"]}, clock offset {a["clock_offset_ms"]} ms; '
                     f'auth failures {m["auth_failures"]}')
    for symbol, book in m['books'].items():
        lines.append(f'book {symbol:<15} {book["state"]:<9} seq {book["last_update_id"]}  applied {book["applied"]}  '
                     f'stale dropped {book["stale_dropped"]}')
    lines.append('  (stale dropped: depth frames received before the book\'s REST snapshot that the snapshot '
                 'already contains;\n   a few at every sync are normal, and nothing is lost)')
    health = feed.health()
    reasons = ''.join(f'\n  - {reason}' for reason in health.reasons)
    lines.append(f'health:  {health.status} (checked {clock(health.checked_at)} UTC){reasons}')
    return '\n'.join(lines)


async def place_and_cancel_orders(config: BackpackConfig) -> None:
    """A few signed REST orders on the simulator, so the private channels have something to say."""
    await asyncio.sleep(3)
    async with BackpackRestClient.from_config(config) as rest:
        order = lambda **body: rest.signed_post('orderExecute', '/api/v1/order', body)  # noqa: E731
        await order(symbol='SOL_USDC', side='Bid', orderType='Market', quantity='1.5')
        await order(symbol='SOL_USDC_PERP', side='Bid', orderType='Market', quantity='2')
        await asyncio.sleep(2)
        await order(symbol='SOL_USDC_PERP', side='Ask', orderType='Market', quantity='0.5')
        best_bid = Decimal((await rest.depth('SOL_USDC', 5))['bids'][-1][0])
        resting = await order(symbol='SOL_USDC', side='Bid', orderType='Limit', quantity='1',
                              price=str((best_bid * Decimal('0.98')).quantize(Decimal('0.01'))))
        await asyncio.sleep(2)
        await rest.signed_delete('orderCancel', '/api/v1/order', {'symbol': 'SOL_USDC', 'orderId': resting['id']})


def run(seconds: float, config: Optional[dict], symbols: list, private: bool = False) -> None:
    printer = Printer(every_s=1.0)
    handler = FeedHandler(config={'log': {'disabled': True}})
    perps = [s for s in symbols if s.endswith('-PERP')]
    subscription = {TRADES: symbols, L2_BOOK: symbols, TICKER: symbols, CANDLES: symbols, FUNDING: perps}
    callbacks = {TRADES: printer.trade, L2_BOOK: printer.book, TICKER: printer.ticker, CANDLES: printer.candle,
                 FUNDING: printer.funding}
    if private:
        # The simulator accepts any well-formed key: a new one each run. An empty symbol list
        # asks for every market.
        config = BackpackConfig(**config, enable_private_channels=True,
                                auth={'private_key': base64.b64encode(os.urandom(32)).decode()})
        subscription.update({ORDER_INFO: [], FILLS: [], POSITIONS: [], BALANCES: []})
        callbacks.update({ORDER_INFO: printer.order, FILLS: printer.fill, POSITIONS: printer.position,
                          BALANCES: printer.balance})
    feed = BackpackFeed(config=config, candle_interval=CANDLE_INTERVAL, candle_closed_only=False,
                        subscription=subscription, callbacks=callbacks)
    handler.add_feed(feed)
    # The same call on every cryptofeed line: stream for `seconds`, placing orders beside the feed.
    run_handler(handler, seconds, beside=[place_and_cancel_orders(config)] if private else [])
    print(summary(feed, printer, seconds, subscription))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='how long to stream (default 20)')
    parser.add_argument('--live', action='store_true', help='use the real exchange instead of the simulator')
    parser.add_argument('--rate', type=int, default=40, help='simulator book updates per second (default 40)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    if args.live:
        run(args.seconds, None, SYMBOLS)
        return 0
    with simulator(args.rate) as urls:
        print(f'simulator: {urls["rest_url"]} / {urls["ws_url"]} (CA {urls["ca_file"]})')
        run(args.seconds, {'rest_url': urls['rest_url'], 'ws_url': urls['ws_url'], 'ca_file': urls['ca_file']},
            SYMBOLS, private=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
