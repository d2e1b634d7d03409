"""The native Backpack feed behind the migration flag: ``python examples/backpack_native_demo.py``.

Offline by default: it starts the bundled simulator in a child process (TLS on loopback), then
asks cryptofeed for ``'BACKPACK'`` with ``native_enabled: true`` in the handler's ``backpack:``
section, exactly as a config-driven deployment would. ``CRYPTOFEED_BACKPACK_NATIVE`` in the
environment wins over that (``false`` runs the ccxt fallback instead; an invalid value is
reported and the demo exits with status 2). It streams trades, books and tickers for
``--seconds`` (or until Ctrl-C), then prints the feed's metrics and health.

Keys: offline, the demo generates a throw-away ED25519 key (the simulator accepts any
well-formed key) and places and cancels a few orders with it, so the account channels have
something to show; ``--live`` reads ``BACKPACK_PRIVATE_KEY`` (and the other ``BACKPACK_*``
variables) from the environment and places nothing. With a key, the private channels the chosen
feed offers are subscribed as well (``private_channels()``); without one, public data only.

``--live`` uses the real exchange (needs network access from a location Backpack serves).
"""
from __future__ import annotations

import argparse
import base64
import logging
import os
import sys
from typing import List, Optional

import nacl.signing
from cryptofeed import FeedHandler
from cryptofeed.defines import L2_BOOK, TICKER, TRADES

from cryptofeed.exchanges.backpack import (
    BALANCES, FILLS, ORDER_INFO, POSITIONS, BackpackConfig, BackpackError, run_handler,
)
from cryptofeed.exchanges.backpack.hosts.registry import ENV_VAR, FEED_FACTORY

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backpack_demo import Printer, place_and_cancel_orders, simulator  # noqa: E402 - the sibling demo's pieces

SYMBOLS = ['SOL-USDC', 'SOL-USDC-PERP']
PUBLIC_CHANNELS = [TRADES, L2_BOOK, TICKER]
LOG = logging.getLogger('backpack_native_demo')


# ---------------------------------------------------------------------- private channels

def private_channels(feed_class: type) -> List[str]:
    """The account channels to subscribe when a key is configured: those ``feed_class`` offers.

    ``BackpackFeed`` offers ORDER_INFO, FILLS, POSITIONS and BALANCES; ``CcxtBackpackFeed``
    ORDER_INFO, POSITIONS and BALANCES.
    """
    return [c for c in (ORDER_INFO, FILLS, POSITIONS, BALANCES) if c in feed_class.websocket_channels]


def callbacks(printer: Printer, channels) -> dict:
    """The demo printer's callback for each channel subscribed."""
    table = {TRADES: printer.trade, L2_BOOK: printer.book, TICKER: printer.ticker, ORDER_INFO: printer.order,
             FILLS: printer.fill, POSITIONS: printer.position, BALANCES: printer.balance}
    return {channel: table[channel] for channel in channels}


# ---------------------------------------------------------------------- configuration

def generated_key() -> str:
    """A fresh ED25519 seed, base64 (Backpack's key format); good for the simulator only."""
    return base64.b64encode(bytes(nacl.signing.SigningKey.generate())).decode()


def backpack_section(urls: Optional[dict], with_key: bool) -> dict:
    """The handler's ``backpack:`` section: the flag, the endpoints (offline) and the key."""
    section = {'native_enabled': True}
    if urls is None:  # live: the BACKPACK_* environment decides endpoints and key
        env = BackpackConfig.from_env()
        section.update(rest_url=env.rest_url, ws_url=env.ws_url)
        if env.ca_file is not None:
            section['ca_file'] = str(env.ca_file)
        if with_key and env.auth is not None:
            section.update(key_secret=env.auth.private_key.get_secret_value(), enable_private_channels=True)
        return section
    section.update(rest_url=urls['rest_url'], ws_url=urls['ws_url'], ca_file=urls['ca_file'])
    if with_key:
        section.update(key_secret=generated_key(), enable_private_channels=True)
    return section


# ---------------------------------------------------------------------- running

def run(seconds: float, section: dict, place_orders: bool = False) -> int:
    handler = FeedHandler(config={'log': {'disabled': True}, 'backpack': section})
    feed_class = FEED_FACTORY.resolve(handler.config)  # what add_feed('BACKPACK') will build; logs the choice
    keyed = 'key_secret' in section
    account = private_channels(feed_class) if keyed else []
    if keyed and not account:
        LOG.warning('%s offers no private channels; streaming public data only', feed_class.__name__)
    printer = Printer(every_s=1.0)
    subscription = {channel: SYMBOLS for channel in PUBLIC_CHANNELS + account}
    handler.add_feed('BACKPACK', subscription=subscription, callbacks=callbacks(printer, subscription))
    feed = handler.feeds[-1]
    print(f'feed: {type(feed).__name__}  channels: {", ".join(subscription)}  symbols: {", ".join(SYMBOLS)}')
    orders = ([place_and_cancel_orders(BackpackConfig.from_cryptofeed_config({'backpack': section}))]
              if place_orders and account else [])
    run_handler(handler, seconds, beside=orders)  # the same call on every cryptofeed line
    snap = feed.metrics_snapshot()
    print('\n=== summary ===')
    print(f'callbacks:  {printer.counts}')
    print(f'frames:     {snap["messages"]}  reconnects {snap["reconnects"]}  resyncs {snap["resyncs"]}  '
          f'books out of sync {snap["books_out_of_sync"]}')
    print(f'health:     {feed.health()}')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='how long to stream (default 20)')
    parser.add_argument('--live', action='store_true', help='use the real exchange instead of the simulator')
    parser.add_argument('--rate', type=int, default=40, help='simulator book updates per second (default 40)')
    parser.add_argument('--no-key', action='store_true', help='public channels only, even when a key is available')
    parser.add_argument('--log-level', default='INFO', help='logging level (default INFO)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        FEED_FACTORY.choice({'native_enabled': True})  # a bad CRYPTOFEED_BACKPACK_NATIVE fails here, first
        if args.live:
            return run(args.seconds, backpack_section(None, not args.no_key))
        with simulator(args.rate) as urls:
            print(f'simulator: {urls["rest_url"]} / {urls["ws_url"]}')
            return run(args.seconds, backpack_section(urls, not args.no_key), place_orders=True)
    except BackpackError as exc:  # BackpackConfigError among them: a bad flag, key or option
        LOG.error('%s', exc)
        print(f'error: {exc}\n(check {ENV_VAR} and the BACKPACK_* variables)', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
