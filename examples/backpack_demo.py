"""Backpack through cryptofeed in one command: ``make demo`` (offline) or ``make demo-live``.

Offline (default) it starts the bundled simulator in a child process (TLS on loopback, its own
CA), then runs a cryptofeed ``FeedHandler`` with a ``BackpackFeed`` on a few symbols and
channels, printing trades, the top of each book and tickers as they arrive. After
``--seconds`` (default 20) or Ctrl-C it prints the feed's metrics and health.

``--live`` points the same feed at the real exchange (needs network access and a location
Backpack serves).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator, Optional

from cryptofeed import FeedHandler
from cryptofeed.defines import CANDLES, FUNDING, L2_BOOK, TICKER, TRADES

from cryptofeed.exchanges.backpack import BackpackFeed

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
    for symbol, book in m['books'].items():
        lines.append(f'book {symbol:<15} {book["state"]:<9} seq {book["last_update_id"]}  applied {book["applied"]}  '
                     f'stale dropped {book["stale_dropped"]}')
    lines.append(f'health:          {feed.health()}')
    return '\n'.join(lines)


def run(seconds: float, config: Optional[dict], symbols: list) -> None:
    printer = Printer(every_s=1.0)
    handler = FeedHandler(config={'log': {'disabled': True}})
    perps = [s for s in symbols if s.endswith('-PERP')]
    feed = BackpackFeed(config=config, candle_interval='1m',
                        subscription={TRADES: symbols, L2_BOOK: symbols, TICKER: symbols, CANDLES: symbols,
                                      FUNDING: perps},
                        callbacks={TRADES: printer.trade, L2_BOOK: printer.book, TICKER: printer.ticker,
                                   CANDLES: printer.candle, FUNDING: printer.funding})
    handler.add_feed(feed)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def finish():
        raise SystemExit  # FeedHandler.run treats it like Ctrl-C: stop, flush, close

    loop.call_later(seconds, finish)
    handler.run()
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
            SYMBOLS)
    return 0


if __name__ == '__main__':
    sys.exit(main())
