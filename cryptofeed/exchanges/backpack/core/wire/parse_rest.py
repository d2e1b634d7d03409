"""Pure conversions from Backpack REST payloads to what cryptofeed's REST methods return.

Use these from ``rest_api.py``: each ``parse_rest_<thing>(data, symbol, ...)`` takes one
decoded JSON payload (prices still strings) and the normalized cryptofeed symbol, and returns
the cryptofeed type (or, where cryptofeed's own REST mixins return dicts, that dict). No I/O,
no ``await``; times that the payload lacks are passed in (``now``).

Shapes (the choice is cryptofeed 2.4.1's own mixins'; see docs/exchanges/backpack.md):

* trades -> dict ``{timestamp, symbol, id, feed, side, amount, price}`` as the Binance,
  Deribit, Kraken and Bitfinex mixins return; ``side`` is the taker's (``isBuyerMaker`` ->
  ``SELL``), like the TRADES stream, ``id`` the integer trade id.
* ticker -> dict ``{symbol, feed, bid, ask, timestamp}`` as the Kraken, Gemini, Bitfinex and
  Bitmex mixins return, best bid/ask from the depth snapshot.
* l2_book -> ``OrderBook``; candles -> ``Candle``; funding -> ``Funding``; open interest ->
  ``OpenInterest``. The account calls return what the account channels emit, built by the same
  functions of ``adapters.py`` (``parse_capital``, ``parse_rest_position``, ``parse_rest_order``,
  ``parse_rest_fill``), so a REST answer and a stream event for the same state are equal.

Units (backpack-api.md section 2): trade and order ``timestamp``/``createdAt`` are ms, depth
``timestamp`` µs, open-interest ``timestamp`` ms, ``nextFundingTimestamp`` ms, kline
``start``/``end`` and history ``timestamp``/``createdAt`` naive-UTC text (space or ``T``).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Mapping, Optional

from cryptofeed.exchanges.backpack.core.defines import BUY, SELL
from cryptofeed.exchanges.backpack.core import records

from cryptofeed.exchanges.backpack.core.wire.parse import EXCHANGE, history_seconds

__all__ = [
    'parse_rest_trade_dict', 'parse_rest_book', 'parse_rest_ticker', 'parse_rest_kline', 'parse_rest_funding',
    'parse_rest_open_interest',
]


def _dec(value: Any) -> Optional[Decimal]:
    return None if value is None else Decimal(value)


def parse_rest_trade_dict(row: Mapping[str, Any], symbol: str) -> Dict[str, Any]:
    """A ``/api/v1/trades[/history]`` row -> cryptofeed's REST trade dict."""
    return {
        'timestamp': int(row['timestamp']) / 1_000,
        'symbol': symbol,
        'id': int(row['id']),
        'feed': EXCHANGE,
        'side': SELL if row['isBuyerMaker'] else BUY,
        'amount': Decimal(row['quantity']),
        'price': Decimal(row['price']),
    }


def parse_rest_book(data: Mapping[str, Any], symbol: str, max_depth: int = 0) -> records.OrderBook:
    """``/api/v1/depth`` -> ``OrderBook`` with ``sequence_number`` = ``lastUpdateId`` and
    ``timestamp`` the engine time in seconds. Backpack lists both sides ascending; the book sorts."""
    book = records.OrderBook(EXCHANGE, symbol, bids={Decimal(p): Decimal(q) for p, q in data['bids']},
                     asks={Decimal(p): Decimal(q) for p, q in data['asks']}, max_depth=max_depth)
    book.sequence_number = int(data['lastUpdateId'])
    timestamp = data.get('timestamp')
    book.timestamp = None if timestamp is None else int(timestamp) / 1_000_000
    return book


def parse_rest_ticker(data: Mapping[str, Any], symbol: str) -> Dict[str, Any]:
    """Best bid/ask of a ``/api/v1/depth`` snapshot -> cryptofeed's REST ticker dict
    (``bid``/``ask`` None on an empty side). Bids are listed best-last."""
    bids = [Decimal(p) for p, _ in data['bids']]
    asks = [Decimal(p) for p, _ in data['asks']]
    timestamp = data.get('timestamp')
    return {'symbol': symbol, 'feed': EXCHANGE, 'bid': max(bids) if bids else None,
            'ask': min(asks) if asks else None,
            'timestamp': None if timestamp is None else int(timestamp) / 1_000_000}


def parse_rest_kline(row: Mapping[str, Any], symbol: str, interval: str, now: float) -> Optional[records.Candle]:
    """A ``/api/v1/klines`` row -> ``Candle``; ``None`` for an interval without trades (null
    prices), as the CANDLES stream does. ``closed`` once ``end <= now``; ``timestamp`` is the
    candle's end, or ``now`` while it is open."""
    o, h, l, c = row.get('open'), row.get('high'), row.get('low'), row.get('close')  # noqa: E741
    if o is None or h is None or l is None or c is None:
        return None
    start = history_seconds(row['start'])
    end = history_seconds(row['end'])
    trades = row.get('trades')
    return records.Candle(EXCHANGE, symbol, start, end, interval, None if trades is None else int(trades),
                  Decimal(o), Decimal(c), Decimal(h), Decimal(l), Decimal(row.get('volume') or 0),
                  end <= now, min(end, now), dict(row))


def parse_rest_funding(row: Mapping[str, Any], symbol: str, now: float) -> records.Funding:
    """A ``/api/v1/markPrices`` row of a perpetual -> ``Funding`` (rate of the current interval,
    next funding time in seconds); the payload has no time, so ``timestamp`` is ``now``."""
    next_ms = row.get('nextFundingTimestamp')
    return records.Funding(EXCHANGE, symbol, Decimal(row['markPrice']), Decimal(row['fundingRate']),
                   None if next_ms is None else int(next_ms) / 1_000, now, None, dict(row))


def parse_rest_open_interest(row: Mapping[str, Any], symbol: str) -> records.OpenInterest:
    """A ``/api/v1/openInterest`` row -> ``OpenInterest`` (contracts; ms timestamp -> s)."""
    return records.OpenInterest(EXCHANGE, symbol, Decimal(row['openInterest']), int(row['timestamp']) / 1_000, dict(row))
