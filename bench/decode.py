"""Micro-benchmark of the Backpack decoding layer: frames/s, as ratios to orjson + Decimal.

Run: ``.venv-3.11/bin/python bench/decode.py [--seconds 0.2] [--rounds 40]``. Not a test.

What is timed, per frame, all in one process run so that the ratios are comparable:

* ``baseline``   ``orjson.loads(frame)`` and ``Decimal(...)`` of every price/quantity string
                 (DESIGN.md section 7 reference, = 1.00);
* ``route+adapter``  ``Router.route(frame, ts)`` with a handler that calls the adapter
                 (``parse_trade`` -> ``cryptofeed.types.Trade``); for depth, a handler that
                 builds cryptofeed's delta dict from the typed levels (book apply belongs to
                 ``book.py`` and is left to the feed benchmark);
* decoder alternatives, decode only: the one-pass tagged union actually used (strict and lax),
  and the two-pass "envelope with Raw data, then a typed decode chosen by the stream name".

Frames are ``str``, as cryptofeed's websocket connection delivers text frames; the ``bytes``
column repeats the two main rows on the same frames encoded. Timing: interleaved rounds,
each candidate's best round kept, which filters out noise from other processes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import msgspec
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptofeed.defines import ASK, BID  # noqa: E402

from cryptofeed.exchanges.backpack.core.wire import parse as adapters, messages  # noqa: E402
from cryptofeed.exchanges.backpack.core.wire.router import Router  # noqa: E402

FIXTURES = ROOT / 'tests' / 'fixtures' / 'backpack'


def fixture_frame(name: str, case: str) -> str:
    return json.dumps(json.loads((FIXTURES / name).read_text())[case], separators=(',', ':'))


def depth_frame(levels: int) -> str:
    asks = [[f'{100 + i * 0.01:.2f}', f'{1 + i * 0.37:.2f}'] for i in range(levels)]
    bids = [[f'{99.99 - i * 0.01:.2f}', f'{2 + i * 0.41:.2f}'] for i in range(levels)]
    data = {'E': 1788367430265241, 'T': 1788367430264934, 'U': 4330360996, 'a': asks, 'b': bids, 'e': 'depth',
            's': 'SOL_USDC', 'u': 4330361010}
    return json.dumps({'stream': 'depth.SOL_USDC', 'data': data}, separators=(',', ':'))


D = Decimal


def baseline_trade(frame):
    data = orjson.loads(frame)['data']
    return D(data['p']), D(data['q'])


def baseline_depth(frame):
    data = orjson.loads(frame)['data']
    return [(D(p), D(q)) for p, q in data['b']], [(D(p), D(q)) for p, q in data['a']]


class _RawEnvelope(msgspec.Struct):
    stream: str
    data: msgspec.Raw


_RAW_DECODER = msgspec.json.Decoder(_RawEnvelope)
_BY_KIND = {kind: msgspec.json.Decoder(cls) for kind, cls in messages.STREAM_PAYLOADS.items()}


def two_pass(frame):
    env = _RAW_DECODER.decode(frame)
    return _BY_KIND[env.stream.partition('.')[0]].decode(env.data)


def on_trade(msg, symbol, interval, receipt_ts):
    return adapters.parse_trade(msg, symbol, receipt_ts)


def on_depth(msg, symbol, interval, receipt_ts):
    return {BID: msg.b, ASK: msg.a}


ROUTER = Router({'trade': on_trade, 'depth': on_depth}, {'SOL_USDC': 'SOL-USDC'})


def routed(frame):
    return ROUTER.route(frame, 1.0)


def candidates() -> Dict[str, Callable]:
    return {
        'route+adapter': routed,
        'decode: union strict (used)': messages.ENVELOPE_DECODER.decode,
        'decode: union lax': messages.ENVELOPE_DECODER_LAX.decode,
        'decode: raw envelope + 2nd pass': two_pass,
    }


def measure(funcs: Dict[str, Callable], frame, seconds: float, rounds: int) -> Dict[str, float]:
    for fn in funcs.values():  # warm up and check
        fn(frame)
    # calibrate the loop length so that one round of one candidate takes about `seconds`
    n = 1000
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            funcs['baseline'](frame)
        if time.perf_counter() - t0 > seconds / 4:
            break
        n *= 2
    n = max(1000, int(n * seconds / max(time.perf_counter() - t0, 1e-9)))
    best = dict.fromkeys(funcs, 0.0)
    for _ in range(rounds):
        for name, fn in funcs.items():
            t0 = time.perf_counter()
            for _ in range(n):
                fn(frame)
            rate = n / (time.perf_counter() - t0)
            if rate > best[name]:
                best[name] = rate
    return best


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=0.05, help='length of one timed round per candidate')
    parser.add_argument('--rounds', type=int, default=30, help='interleaved rounds; the best is kept')
    args = parser.parse_args(argv)

    cases: List[Tuple[str, str, Callable]] = [
        ('trade', fixture_frame('ws_trade.json', 'documented'), baseline_trade),
        ('depth realtime (1 level)', fixture_frame('ws_depth.json', 'realtime'), baseline_depth),
        ('depth aggregated (4 levels)', fixture_frame('ws_depth.json', 'aggregated'), baseline_depth),
        ('depth 2x10 levels', depth_frame(10), baseline_depth),
    ]
    print(f'python {sys.version.split()[0]}, msgspec {msgspec.__version__}, orjson {orjson.__version__}')
    print(f'{"frame":30s} {"candidate":34s} {"frames/s":>12s} {"ratio":>7s} {"bytes":>7s}')
    for label, frame, baseline in cases:
        funcs = {'baseline': baseline, **candidates()}
        rates = measure(funcs, frame, args.seconds, args.rounds)
        encoded = frame.encode()
        rates_b = measure({'baseline': baseline, 'route+adapter': routed,
                           'decode: union strict (used)': messages.ENVELOPE_DECODER.decode},
                          encoded, args.seconds, max(args.rounds // 2, 1))
        base = rates['baseline']
        for name, rate in rates.items():
            b = f'{rates_b[name] / rates_b["baseline"]:.3f}' if name in rates_b else ''
            print(f'{label:30s} {name:34s} {rate:12,.0f} {rate / base:7.3f} {b:>7s}')
        print()
    assert ROUTER.dropped == 0, ROUTER.drops
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
