"""Run the Backpack simulator as a process: ``python -m cryptofeed.exchanges.backpack.simulator``.

Use it for demos, benchmarks and tests in another process. When the server is ready, exactly
one JSON line goes to stdout::

    {"rest_url": "http://127.0.0.1:PORT", "ws_url": "ws://127.0.0.1:PORT", "ca_file": null}

(``ca_file`` is the CA certificate to trust with ``--tls``). The process then runs until
SIGINT or SIGTERM, shuts down cleanly and exits 0. Logs go to stderr. For whole-venue tests,
``--synthetic-markets N`` adds generated markets, ``--rest-rate-limit R`` and
``--max-streams-per-connection S`` turn on the limits (see ``server.BackpackSimulator``); markets
are listed and delisted while running over ``POST /_sim/list`` and ``/_sim/delist``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Optional, Sequence

from cryptofeed.exchanges.backpack.simulator.markets import DEFAULT_SYMBOLS
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

__all__ = ['build_parser', 'main']


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m cryptofeed.exchanges.backpack.simulator',
        description='A local, protocol-faithful Backpack exchange (REST + WebSocket on one port).')
    parser.add_argument('--host', default='127.0.0.1', help='address to bind (default 127.0.0.1)')
    parser.add_argument('--port', type=int, default=0, help='port to bind (default 0: any free port)')
    parser.add_argument('--tls', action='store_true', help='serve https/wss with a throw-away CA (see ca_file)')
    parser.add_argument('--rate', type=float, default=200.0,
                        help='order-book updates per second over all markets (default 200)')
    parser.add_argument('--seed', type=int, default=0, help='random seed of the market (default 0)')
    parser.add_argument('--markets', default=None,
                        help=f'comma-separated symbols (default: all of {",".join(DEFAULT_SYMBOLS)})')
    parser.add_argument('--synthetic-markets', type=int, default=0, metavar='N',
                        help='add N generated markets: SYN001_USDC, SYN002_USDC, SYN003_USDC_PERP, ... '
                             '(every third a perpetual; default 0)')
    parser.add_argument('--ping-interval', type=float, default=60.0, help='seconds between server pings')
    parser.add_argument('--ping-timeout', type=float, default=120.0, help='seconds without pong before closing')
    parser.add_argument('--api-key', action='append', default=None, dest='api_keys', metavar='KEY',
                        help='accept only this API key on signed endpoints (repeatable: strict mode)')
    parser.add_argument('--history-s', type=float, default=0.0,
                        help='seconds of past market activity to generate at start (with --history-updates)')
    parser.add_argument('--history-updates', type=int, default=0,
                        help='engine events spread over --history-s (about one trade per five; default 0)')
    parser.add_argument('--history-rate-limit', default=None, metavar='N/SECONDS',
                        help='answer 429 beyond N historical requests per SECONDS (e.g. 30/60; default: no limit)')
    parser.add_argument('--rest-rate-limit', type=float, default=None, metavar='R',
                        help='answer 429 beyond R public /api/v1 requests per second per client address '
                             '(token bucket, burst R; default: no limit)')
    parser.add_argument('--max-streams-per-connection', type=int, default=None, metavar='S',
                        help='refuse (error frame) a SUBSCRIBE that takes a connection past S streams '
                             '(default: no limit)')
    parser.add_argument('--log-level', default='INFO', help='stderr log level (default INFO)')
    return parser


async def _serve(args: argparse.Namespace) -> None:
    markets = [s.strip() for s in args.markets.split(',') if s.strip()] if args.markets else None
    limit = None
    if args.history_rate_limit:
        count, _, seconds = args.history_rate_limit.partition('/')
        try:
            limit = (int(count), float(seconds))
        except ValueError:
            raise ValueError(f'--history-rate-limit takes N/SECONDS, e.g. 30/60, not {args.history_rate_limit!r}')
    sim = BackpackSimulator(markets=markets, seed=args.seed, tls=args.tls, rate=args.rate,
                            ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
                            strict_keys=args.api_keys, host=args.host, port=args.port,
                            history_s=args.history_s, history_updates=args.history_updates,
                            history_rate_limit=limit, synthetic_markets=args.synthetic_markets,
                            rest_rate_limit=args.rest_rate_limit,
                            max_streams_per_connection=args.max_streams_per_connection)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with sim:
            sys.stdout.write(json.dumps({'rest_url': sim.rest_url, 'ws_url': sim.ws_url, 'ca_file': sim.ca_file})
                             + '\n')
            sys.stdout.flush()
            await stop.wait()
            logging.getLogger('cryptofeed.backpack.simulator').info('signal received, shutting down')
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        asyncio.run(_serve(args))
    except ValueError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
