"""Backpack through cryptofeed in one command: ``make demo`` (offline) or ``make demo-live``.

Offline (default) it starts the bundled simulator in a child process (TLS on loopback, its own
CA), then runs a cryptofeed ``FeedHandler`` with a ``BackpackFeed`` on a few symbols and
channels, printing trades, the top of each book and tickers as they arrive. The account side
runs too: the simulator accepts any well-formed key, so the demo generates one, turns on the
private channels (ORDER_INFO, FILLS, POSITIONS, BALANCES for every market), places and cancels
a few orders with signed REST and prints what the private streams report. After ``--seconds``
(default 20) or Ctrl-C it prints the feed's metrics and health.

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

    def _due(self, key) -> bool:
        now = time.monotonic()
        if now - self.last.get(key, 0) < self.every_s:
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
        print(f'CANDLE  {c.symbol:<15} {c.interval} o={c.open} h={c.high} l={c.low} c={c.close} v={c.volume}')

    async def order(self, o, receipt_ts):
        self._count(ORDER_INFO)
        print(f'ORDER   {o.symbol:<15} {o.side:<4} {o.type:<6} {o.status:<9} {o.amount} @ {o.price} '
              f'remaining {o.remaining} id={o.id}')

    async def fill(self, f, receipt_ts):
        self._count(FILLS)
        print(f'FILL    {f.symbol:<15} {f.side:<4} {f.amount} @ {f.price} fee {f.fee} {f.raw["fee_asset"]} '
              f'{f.liquidity} trade={f.id} order={f.order_id}')

    async def position(self, p, receipt_ts):
        self._count(POSITIONS)
        print(f'POSITION {p.symbol:<14} {p.side:<5} {p.position} entry {p.entry_price} upnl {p.unrealised_pnl}')

    async def balance(self, b, receipt_ts):
        self._count(BALANCES)
        print(f'BALANCE {b.currency:<15} {b.balance} (reserved {b.reserved})')

    async def funding(self, f, receipt_ts):
        self._count(FUNDING)
        if self._due((FUNDING, f.symbol)):
            print(f'FUNDING {f.symbol:<15} mark {f.mark_price} rate {f.rate} next {time.ctime(f.next_funding_time)}')


def summary(feed: BackpackFeed, printer: Printer) -> str:
    m = feed.metrics_snapshot()
    lines = ['', '=== summary ===',
             f'callbacks:       {printer.counts}',
             f'frames:          {m["messages"]} (dropped {m["dropped"]}, parse errors {m["parse_errors"]})',
             f'reconnects:      {m["reconnects"]}   gaps: {m["gaps"]}   resyncs: {m["resyncs"]}   '
             f'backfilled trades: {m["backfilled_trades"]}']
    if 'account' in m:
        lines.append(f'account:         {m["account"]}  auth failures: {m["auth_failures"]}')
    for symbol, book in m['books'].items():
        lines.append(f'book {symbol:<15} {book["state"]:<9} seq {book["last_update_id"]}  applied {book["applied"]}  '
                     f'stale dropped {book["stale_dropped"]}')
    lines.append(f'health:          {feed.health()}')
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
    feed = BackpackFeed(config=config, candle_interval='1m', subscription=subscription, callbacks=callbacks)
    handler.add_feed(feed)
    # The same call on every cryptofeed line: stream for `seconds`, placing orders beside the feed.
    run_handler(handler, seconds, beside=[place_and_cancel_orders(config)] if private else [])
    print(summary(feed, printer))


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
