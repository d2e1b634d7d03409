"""Wire rendering for the simulator: market-model events and state -> Backpack JSON shapes.

Use these pure functions wherever the simulator puts something on the wire: WebSocket data
payloads of backpack-api.md §8.1, the ``{"stream","data"}`` envelope, REST bodies of §3, and
the server-side WebSocket text frame. Field names, key order (the exchange sorts keys, upper
case first), JSON types and units follow the reference: decimals as strings without exponent
(padded to the tick on the streams, unpadded in REST bodies: ``"100.7"``, §3.3),
``E``/``T`` integers in µs, ``n`` of markPrice in ms, kline times as naive UTC text.
"""
from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any, Iterable, Optional

import msgspec

from cryptofeed.exchanges.backpack.simulator.market import (
    BookSnapshot, BookTop, DepthUpdate, Event, KlineRow, KlineUpdate, LiquidationEvent, MarkPriceUpdate,
    OpenInterestUpdate, TickerStats, TickerUpdate, TradePrint, TradeRecord, format_naive,
)

__all__ = [
    'dstr', 'rstr', 'stream_of', 'event_data', 'encode_envelope', 'encode_event', 'encode_json', 'ws_text_frame',
    'WS_PING_FRAME', 'error_frame', 'ticker_rest', 'depth_rest', 'trade_rest', 'kline_rest', 'mark_price_rest',
    'funding_rate_rest', 'open_interest_rest', 'book_truth', 'trade_truth',
]

_encoder = msgspec.json.Encoder()
encode_json = _encoder.encode

#: A server PING control frame with an empty payload (RFC 6455 §5.5.2, unmasked).
WS_PING_FRAME = b'\x89\x00'
_LEN2 = struct.Struct('!BBH').pack
_LEN8 = struct.Struct('!BBQ').pack


def dstr(value: Decimal) -> str:
    """A decimal as the exchange prints it: plain digits, never exponent notation."""
    text = str(value)
    if 'E' in text:
        text = format(value, 'f')
    return text


def _ostr(value: Optional[Decimal]) -> Optional[str]:
    return None if value is None else dstr(value)


def rstr(value: Decimal) -> str:
    """A decimal as the exchange's REST API prints it: unpadded (``"100.7"``, not ``"100.70"``),
    plain digits, never ``-0``. The WebSocket streams keep the tick's padding (``dstr``)."""
    if not value:
        return '0'
    return format(value.normalize(), 'f')


def _orstr(value: Optional[Decimal]) -> Optional[str]:
    return None if value is None else rstr(value)


def ws_text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented server text frame carrying ``payload`` (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return _LEN2(0x81, 126, n) + payload
    return _LEN8(0x81, 127, n) + payload


def stream_of(event: Event) -> str:
    """The public stream name an event is published on."""
    kind = type(event)
    if kind is DepthUpdate:
        if event.window_ms:
            return f'depth.{event.window_ms}ms.{event.symbol}'
        return f'depth.{event.symbol}'
    if kind is TradePrint:
        return f'trade.{event.symbol}'
    if kind is BookTop:
        return f'bookTicker.{event.symbol}'
    if kind is TickerUpdate:
        return f'ticker.{event.symbol}'
    if kind is KlineUpdate:
        return f'kline.{event.interval}.{event.symbol}'
    if kind is MarkPriceUpdate:
        return f'markPrice.{event.symbol}'
    if kind is OpenInterestUpdate:
        return f'openInterest.{event.symbol}'
    if kind is LiquidationEvent:
        return 'liquidation'
    raise TypeError(f'not a market event: {event!r}')


def _levels(levels: Iterable[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[dstr(p), dstr(q)] for p, q in levels]


def event_data(event: Event, emit_us: int) -> dict[str, Any]:
    """The ``data`` object of the stream frame for ``event``, emitted at ``emit_us``."""
    kind = type(event)
    if kind is DepthUpdate:
        return {'E': emit_us, 'T': event.engine_us, 'U': event.first_id, 'a': _levels(event.asks),
                'b': _levels(event.bids), 'e': 'depth', 's': event.symbol, 'u': event.last_id}
    if kind is TradePrint:
        return {'E': emit_us, 'T': event.engine_us, 'a': event.sell_order_id, 'b': event.buy_order_id, 'e': 'trade',
                'm': event.buyer_is_maker, 'p': dstr(event.price), 'q': dstr(event.quantity), 's': event.symbol,
                't': event.trade_id}
    if kind is BookTop:
        return {'A': dstr(event.ask_quantity), 'B': dstr(event.bid_quantity), 'E': emit_us, 'T': event.engine_us,
                'a': dstr(event.ask_price), 'b': dstr(event.bid_price), 'e': 'bookTicker', 's': event.symbol,
                'u': event.update_id}
    if kind is TickerUpdate:
        st = event.stats
        return {'E': emit_us, 'V': dstr(st.quote_volume), 'c': dstr(st.last_price), 'e': 'ticker', 'h': dstr(st.high),
                'l': dstr(st.low), 'n': st.trades, 'o': dstr(st.first_price), 's': event.symbol,
                'v': dstr(st.volume)}
    if kind is KlineUpdate:
        row = event.row
        return {'E': emit_us, 'T': format_naive(row.end_s), 'X': event.closed, 'c': _ostr(row.close), 'e': 'kline',
                'h': _ostr(row.high), 'l': _ostr(row.low), 'n': row.trades, 'o': _ostr(row.open), 's': event.symbol,
                't': format_naive(row.start_s), 'v': dstr(row.volume) if row.trades else None}
    if kind is MarkPriceUpdate:
        return {'E': emit_us, 'T': event.engine_us, 'e': 'markPrice', 'f': dstr(event.funding_rate),
                'i': dstr(event.index_price), 'n': event.next_funding_ms, 'p': dstr(event.mark_price),
                's': event.symbol}
    if kind is OpenInterestUpdate:
        return {'E': emit_us, 'e': 'openInterest', 'o': dstr(event.open_interest), 's': event.symbol}
    if kind is LiquidationEvent:
        return {'E': emit_us, 'S': event.side, 'T': event.engine_us, 'e': 'liquidation', 'p': dstr(event.price),
                'q': dstr(event.quantity), 's': event.symbol}
    raise TypeError(f'not a market event: {event!r}')


def encode_envelope(stream: str, data: Any) -> bytes:
    """``{"stream": ..., "data": ...}`` as compact JSON bytes."""
    return _encoder.encode({'stream': stream, 'data': data})


def _levels_json(levels: Iterable[tuple[Decimal, Decimal]]) -> str:
    return ','.join([f'["{dstr(p)}","{dstr(q)}"]' for p, q in levels])


def encode_event(stream: str, event: Event, emit_us: int) -> bytes:
    """The envelope of ``event`` on ``stream`` as JSON bytes; same text as ``encode_envelope``.

    The three high-rate streams (depth, trade, bookTicker) are formatted directly: their strings
    (symbols, decimals, numeric order ids) never need JSON escaping. Others go through msgspec.
    """
    kind = type(event)
    if kind is DepthUpdate:
        return (f'{{"stream":"{stream}","data":{{"E":{emit_us},"T":{event.engine_us},"U":{event.first_id},'
                f'"a":[{_levels_json(event.asks)}],"b":[{_levels_json(event.bids)}],"e":"depth",'
                f'"s":"{event.symbol}","u":{event.last_id}}}}}').encode()
    if kind is TradePrint:
        return (f'{{"stream":"{stream}","data":{{"E":{emit_us},"T":{event.engine_us},"a":"{event.sell_order_id}",'
                f'"b":"{event.buy_order_id}","e":"trade","m":{"true" if event.buyer_is_maker else "false"},'
                f'"p":"{dstr(event.price)}","q":"{dstr(event.quantity)}","s":"{event.symbol}",'
                f'"t":{event.trade_id}}}}}').encode()
    if kind is BookTop:
        return (f'{{"stream":"{stream}","data":{{"A":"{dstr(event.ask_quantity)}","B":"{dstr(event.bid_quantity)}",'
                f'"E":{emit_us},"T":{event.engine_us},"a":"{dstr(event.ask_price)}","b":"{dstr(event.bid_price)}",'
                f'"e":"bookTicker","s":"{event.symbol}","u":{event.update_id}}}}}').encode()
    return _encoder.encode({'stream': stream, 'data': event_data(event, emit_us)})


def error_frame(code: int, message: str) -> bytes:
    """The observed WS error frame ``{"id":null,"error":{"code":..,"message":..}}``."""
    return _encoder.encode({'id': None, 'error': {'code': code, 'message': message}})


# ------------------------------------------------------------------------------------ REST

def ticker_rest(symbol: str, st: TickerStats) -> dict[str, str]:
    """``/api/v1/ticker`` object: every value a string, ``priceChangePercent`` a fraction."""
    change = st.last_price - st.first_price
    pct = (change / st.first_price).quantize(Decimal('0.000001')) if st.first_price else Decimal('0')
    return {'symbol': symbol, 'firstPrice': rstr(st.first_price), 'lastPrice': rstr(st.last_price),
            'priceChange': rstr(change), 'priceChangePercent': rstr(pct), 'high': rstr(st.high), 'low': rstr(st.low),
            'volume': rstr(st.volume), 'quoteVolume': rstr(st.quote_volume), 'trades': str(st.trades)}


def depth_rest(snapshot: BookSnapshot) -> dict[str, Any]:
    """``/api/v1/depth``: both sides ascending by price, ``lastUpdateId`` a string, µs timestamp."""
    return {'asks': [[rstr(p), rstr(q)] for p, q in snapshot.asks],
            'bids': [[rstr(p), rstr(q)] for p, q in reversed(snapshot.bids)],
            'lastUpdateId': str(snapshot.sequence), 'timestamp': snapshot.engine_us}


def trade_rest(rec: TradeRecord) -> dict[str, Any]:
    """``/api/v1/trades`` row: integer id, ms timestamp."""
    return {'id': rec.trade_id, 'isBuyerMaker': rec.buyer_is_maker, 'price': rstr(rec.price),
            'quantity': rstr(rec.quantity), 'quoteQuantity': rstr(rec.price * rec.quantity),
            'timestamp': rec.ts_us // 1000}


def kline_rest(row: KlineRow) -> dict[str, Optional[str]]:
    """``/api/v1/klines`` row: strings, ``"YYYY-MM-DD HH:MM:SS"`` times, null prices without trades."""
    return {'start': format_naive(row.start_s, ' '), 'end': format_naive(row.end_s, ' '), 'open': _orstr(row.open),
            'high': _orstr(row.high), 'low': _orstr(row.low), 'close': _orstr(row.close), 'volume': rstr(row.volume),
            'quoteVolume': rstr(row.quote_volume), 'trades': str(row.trades)}


def mark_price_rest(symbol: str, mark: Decimal, index: Decimal, rate: Decimal, next_ms: int) -> dict[str, Any]:
    return {'symbol': symbol, 'markPrice': rstr(mark), 'indexPrice': rstr(index), 'fundingRate': rstr(rate),
            'nextFundingTimestamp': next_ms}


def funding_rate_rest(symbol: str, end_ms: int, rate: Decimal) -> dict[str, str]:
    return {'symbol': symbol, 'fundingRate': rstr(rate), 'intervalEndTimestamp': format_naive(end_ms // 1000)}


def open_interest_rest(symbol: str, open_interest: Decimal, now_us: int) -> dict[str, Any]:
    return {'symbol': symbol, 'openInterest': rstr(open_interest), 'timestamp': now_us // 1000}


# ------------------------------------------------------------------------------------ truth

def book_truth(snapshot: BookSnapshot) -> dict[str, Any]:
    """``/_sim/book``: sequence and both sides best first, as strings."""
    return {'symbol': snapshot.symbol, 'sequence': snapshot.sequence, 'bids': _levels(snapshot.bids),
            'asks': _levels(snapshot.asks)}


def trade_truth(rec: TradeRecord) -> dict[str, Any]:
    """``/_sim/trades`` row; ``side`` is the taker's side, ``Buy`` or ``Sell``."""
    return {'id': rec.trade_id, 'price': dstr(rec.price), 'quantity': dstr(rec.quantity),
            'side': 'Sell' if rec.buyer_is_maker else 'Buy', 'timestamp_us': rec.ts_us}

