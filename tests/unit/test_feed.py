"""BackpackFeed construction: pure wiring decisions, made without any network I/O."""
from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import CANDLES, FUNDING, INDEX, L2_BOOK, LIQUIDATIONS, OPEN_INTEREST, TICKER, TRADES
from cryptofeed.exceptions import UnsupportedSymbol
from cryptofeed.symbols import Symbols

from cryptofeed.exchanges.backpack import BACKPACK, BackpackConfigError, BackpackFeed
from cryptofeed.exchanges.backpack.hosts.ws import BackpackWSConn

# Nothing listens on port 1: any attempt to reach it would fail loudly.
OFFLINE = {'rest_url': 'http://127.0.0.1:1', 'ws_url': 'ws://127.0.0.1:1'}


def feed(**kwargs) -> BackpackFeed:
    kwargs.setdefault('config', OFFLINE)
    return BackpackFeed(**kwargs)


def names(f: BackpackFeed) -> list:
    return [s.name for s in f._streams]


def test_construction_does_no_network_io_and_leaves_the_symbol_cache_alone():
    Symbols.data.pop(BACKPACK, None)
    f = feed(symbols=['SOL-USDC', 'BTC-USDC-PERP'], channels=[TRADES])
    assert not Symbols.populated(BACKPACK)
    assert f._ctx.rest_created is None  # the REST client is created lazily
    assert f.std_symbol_to_exchange_symbol('BTC-USDC-PERP') == 'BTC_USDC_PERP'
    assert f.exchange_symbol_to_std_symbol('SPCX.US_USDC') == 'SPCX.US-USDC'


def test_streams_for_every_channel_with_perp_only_streams_skipped_for_spot(caplog):
    with caplog.at_level(logging.WARNING, logger=package_log.root()):
        f = feed(symbols=['SOL-USDC', 'BTC-USDC-PERP'],
                 channels=[TRADES, L2_BOOK, TICKER, CANDLES, FUNDING, INDEX, OPEN_INTEREST, LIQUIDATIONS],
                 candle_interval='1M')
    assert sorted(names(f)) == sorted([
        'trade.SOL_USDC', 'trade.BTC_USDC_PERP', 'depth.SOL_USDC', 'depth.BTC_USDC_PERP',
        'bookTicker.SOL_USDC', 'bookTicker.BTC_USDC_PERP', 'kline.1month.SOL_USDC', 'kline.1month.BTC_USDC_PERP',
        'markPrice.BTC_USDC_PERP', 'openInterest.BTC_USDC_PERP', 'liquidation',
    ])
    warned = [r.getMessage() for r in caplog.records]
    # The warnings name the channels asked for, not the streams that carry them.
    assert any('FUNDING and INDEX is published for perpetuals only; SOL-USDC is spot' in m for m in warned)
    assert any('OPEN_INTEREST is published for perpetuals only; SOL-USDC is spot' in m for m in warned)
    assert not any('markPrice' in m or 'openInterest' in m for m in warned)


def test_funding_asked_for_a_spot_symbol_is_warned_about_by_its_channel_name(caplog):
    with caplog.at_level(logging.WARNING, logger=package_log.root()):
        f = feed(subscription={TRADES: ['SOL-USDC'], FUNDING: ['SOL-USDC', 'BTC-USDC-PERP'], INDEX: ['BTC-USDC-PERP']})
    assert sorted(names(f)) == ['markPrice.BTC_USDC_PERP', 'trade.SOL_USDC']
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert message == 'BACKPACK: FUNDING is published for perpetuals only; SOL-USDC is spot, so it is not subscribed for it'


def test_funding_and_index_share_one_stream_and_emit_only_what_was_asked():
    f = feed(subscription={FUNDING: ['BTC-USDC-PERP'], INDEX: ['ETH-USDC-PERP']})
    assert sorted(names(f)) == ['markPrice.BTC_USDC_PERP', 'markPrice.ETH_USDC_PERP']
    assert f._wanted[FUNDING] == {'BTC-USDC-PERP'} and f._wanted[INDEX] == {'ETH-USDC-PERP'}


def test_aggregated_depth_stream_names_and_symbols_with_dots():
    f = feed(symbols=['SPCX.US-USDC', 'kPEPE-USDC-PERP'], channels=[L2_BOOK], depth_interval='600ms')
    assert sorted(names(f)) == ['depth.600ms.SPCX.US_USDC', 'depth.600ms.kPEPE_USDC_PERP']


def test_streams_are_split_over_connections_past_the_per_connection_limit():
    symbols = [f'C{i}-USDC' for i in range(7)]
    f = feed(symbols=symbols, channels=[TRADES, L2_BOOK], streams_per_connection=5)
    connections = f.connect()
    assert [len(c[0].streams) for c in connections] == [5, 5, 4]
    assert all(isinstance(c[0], BackpackWSConn) for c in connections)
    assert sorted(s.name for c in connections for s in c[0].streams) == sorted(names(f))


def test_ws_connections_take_proxy_tls_and_keepalive_from_the_config(tmp_path):
    f = feed(symbols=['SOL-USDC'], channels=[TRADES], ping_interval=3, ping_timeout=4,
             config={**OFFLINE, 'proxies': {'websocket': 'socks5://127.0.0.1:1080'}})
    conn = f.connect()[0][0]
    assert conn.ws_kwargs['proxy'] == 'socks5://127.0.0.1:1080'
    assert (conn.ws_kwargs['ping_interval'], conn.ws_kwargs['ping_timeout']) == (3, 4)
    assert 'ssl' not in conn.ws_kwargs  # ws:// on loopback


@pytest.mark.parametrize('kwargs,message', [
    ({'depth_interval': '100ms'}, 'depth_interval'),
    ({'snapshot_limit': 7}, 'snapshot_limit'),
    ({'streams_per_connection': 0}, 'streams_per_connection'),
    ({'candle_interval': '2m'}, 'Candle interval'),
    ({'reconnect_backoff_base_s': 5, 'reconnect_backoff_max_s': 1}, 'cap'),
])
def test_invalid_options_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        feed(symbols=['SOL-USDC'], channels=[TRADES], **kwargs)


def test_symbols_outside_the_backpack_grammar_fail_at_construction():
    with pytest.raises(UnsupportedSymbol, match='BASE-QUOTE'):
        feed(symbols=['SOL/USDC'], channels=[TRADES])


def test_bad_config_fails_at_construction_with_a_config_error():
    with pytest.raises(BackpackConfigError, match='sandbox'):
        feed(symbols=['SOL-USDC'], channels=[TRADES], config={'use_sandbox': True})
    with pytest.raises(BackpackConfigError, match='ws_url'):
        feed(symbols=['SOL-USDC'], channels=[TRADES], config={'ws_url': 'ws://example.com'})


def test_ws_url_must_be_secure_off_loopback():
    with pytest.raises(ValueError, match='wss://'):
        BackpackWSConn('ws://example.com', 'BACKPACK', subscription={})


def test_retries_default_to_unlimited_and_candle_intervals_cover_backpack():
    f = feed(symbols=['SOL-USDC'], channels=[CANDLES])
    assert f.retries == -1
    assert f.candle_interval_map['1M'] == '1month'
    assert set(f.valid_candle_intervals) == {'1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h',
                                             '12h', '1d', '3d', '1w', '1M'}


def _frame(stream: str, data: dict) -> str:
    import json
    return json.dumps({'stream': stream, 'data': data})


def test_frames_of_streams_or_symbols_not_subscribed_are_dropped_not_raised():
    import asyncio
    got = []

    async def on_trade(trade, receipt_ts):
        got.append(trade)

    f = feed(symbols=['SOL-USDC'], channels=[TRADES, LIQUIDATIONS], callbacks={TRADES: on_trade,
                                                                               LIQUIDATIONS: on_trade})
    trade = {'e': 'trade', 'E': 1, 'T': 2, 's': 'SOL_USDC', 'p': '1.5', 'q': '2', 't': 7, 'm': False}
    depth = {'e': 'depth', 'E': 1, 'T': 2, 's': 'SOL_USDC', 'U': 5, 'u': 5, 'a': [], 'b': [['1', '1']]}
    liquidation = {'e': 'liquidation', 'E': 1, 'T': 2, 's': 'BTC_USDC_PERP', 'p': '1', 'q': '1', 'S': 'Bid'}

    async def run():
        await f.message_handler(_frame('trade.SOL_USDC', trade), None, 1.0)
        await f.message_handler(_frame('depth.SOL_USDC', depth), None, 1.0)           # not subscribed
        await f.message_handler(_frame('trade.ETH_USDC', {**trade, 's': 'ETH_USDC'}), None, 1.0)
        await f.message_handler(_frame('liquidation', liquidation), None, 1.0)         # another market

    asyncio.run(run())
    assert [t.symbol for t in got] == ['SOL-USDC']
    assert f.metrics_snapshot()['dropped'] == 2


def test_sandbox_fails_like_use_sandbox_instead_of_reaching_production():
    with pytest.raises(BackpackConfigError, match='Backpack has no sandbox'):
        feed(symbols=['SOL-USDC'], channels=[TRADES], sandbox=True)


@pytest.mark.parametrize('kwargs, message', [
    ({'ping_timeout': -1}, 'ping_timeout must be a finite number of seconds > 0.0, got -1'),
    ({'ping_interval': float('inf')}, 'ping_interval must be a finite number'),
    ({'trade_backfill_limit': -5}, 'trade_backfill_limit must be an integer >= 0, got -5'),
    ({'snapshot_workers': 0}, 'snapshot_workers must be an integer >= 1'),
    ({'streams_per_connection': 0}, 'streams_per_connection must be an integer >= 1'),
    ({'max_frame_bytes': 100}, 'max_frame_bytes must be an integer >= 65536'),
    ({'keep_raw': 'yes'}, 'keep_raw must be True or False'),
    ({'ping_intreval': 5}, "unknown keyword argument 'ping_intreval'; did you mean 'ping_interval'"),
    ({'candle_intervall': '1m'}, "did you mean 'candle_interval'"),
])
def test_the_feeds_own_keywords_are_validated_at_construction(kwargs, message):
    with pytest.raises(BackpackConfigError) as info:
        feed(symbols=['SOL-USDC'], channels=[TRADES], **kwargs)
    assert message in str(info.value)


def test_keywords_meaningless_on_backpack_are_accepted_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger=package_log.root()):
        feed(symbols=['SOL-USDC'], channels=[L2_BOOK], checksum_validation=True, snapshot_interval=1000)
    warned = [r.getMessage() for r in caplog.records]
    assert any('checksum_validation=True is ignored' in m for m in warned)
    assert any('snapshot_interval=1000 is ignored' in m for m in warned)


def test_http_proxy_applies_to_both_transports_and_cannot_be_given_twice():
    f = feed(symbols=['SOL-USDC'], channels=[TRADES], http_proxy='socks5h://127.0.0.1:1080')
    assert f.backpack_config.rest_proxy == f.backpack_config.ws_proxy == 'socks5h://127.0.0.1:1080'
    with pytest.raises(BackpackConfigError, match='give the proxy once'):
        feed(config={**OFFLINE, 'proxies': {'url': 'http://127.0.0.1:3128'}}, symbols=['SOL-USDC'],
             channels=[TRADES], http_proxy='http://127.0.0.1:3129')


# -- hostile values, corrupt ids and quiet klines through the feed (issue 10 items 5, 6, 11) -----

PERP = 'BTC_USDC_PERP'
GOOD_FRAMES = {
    TRADES: ('trade.' + PERP, {'e': 'trade', 'E': 1788367430265241, 'T': 1788367430264934, 's': PERP, 'p': '98.5',
                               'q': '0.07', 't': 7, 'm': False}),
    TICKER: ('bookTicker.' + PERP, {'e': 'bookTicker', 'E': 1788367430247487, 'T': 1788367430246081, 's': PERP,
                                    'a': '98.97', 'A': '22.39', 'b': '98.96', 'B': '288.77', 'u': 4330360995}),
    CANDLES: ('kline.1m.' + PERP, {'e': 'kline', 'E': 1788367440000512, 's': PERP, 't': '2026-09-02T16:43:00',
                                   'T': '2026-09-02T16:44:00', 'o': '98.99', 'h': '99.01', 'l': '98.95',
                                   'c': '98.97', 'v': '41.37', 'n': 17, 'X': True}),
    FUNDING: ('markPrice.' + PERP, {'e': 'markPrice', 'E': 1788367430422109, 'T': 1788367430421396, 's': PERP,
                                    'p': '98.94', 'f': '0.0000125', 'i': '98.94998504', 'n': 1788368400000}),
    OPEN_INTEREST: ('openInterest.' + PERP, {'e': 'openInterest', 'E': 1694687965941000, 's': PERP, 'o': '100'}),
    LIQUIDATIONS: ('liquidation', {'e': 'liquidation', 'E': 1694688638091000, 'T': 1694688638090000, 's': PERP,
                                   'p': '18.70', 'q': '10', 'S': 'Bid'}),
}
HOSTILE_FIELDS = {TRADES: ('p', 'q'), TICKER: ('a', 'A', 'b', 'B'), CANDLES: ('o', 'h', 'l', 'c', 'v'),
                  FUNDING: ('p', 'f', 'i'), OPEN_INTEREST: ('o',), LIQUIDATIONS: ('p', 'q')}


def _recording_feed(channels, **kwargs):
    got = {channel: [] for channel in channels}

    def record(channel):
        async def callback(obj, receipt_ts):
            got[channel].append(obj)
        return callback

    f = feed(symbols=['BTC-USDC-PERP'], channels=list(channels), candle_interval='1m',
             callbacks={channel: record(channel) for channel in channels}, **kwargs)
    return f, got


@pytest.mark.parametrize('channel', list(GOOD_FRAMES))
def test_hostile_values_never_reach_a_callback_and_are_counted_as_parse_errors(channel):
    import asyncio
    f, got = _recording_feed([channel])
    stream, good = GOOD_FRAMES[channel]
    hostile = ['NaN', 'sNaN', 'Infinity', '-Infinity', '1E+400', '-1']

    async def run():
        for field in HOSTILE_FIELDS[channel]:
            for value in hostile:
                if field == 'f' and value == '-1':
                    value = '-2'
                await f.message_handler(_frame(stream, {**good, field: value}), None, 1.0)
        await f.message_handler(_frame(stream, good), None, 1.0)

    asyncio.run(run())
    sent = len(HOSTILE_FIELDS[channel]) * len(hostile)
    assert len(got[channel]) == 1  # only the good frame
    snap = f.metrics_snapshot()
    assert snap['parse_errors'] == sent and snap['drops']['invalid'] == sent and snap['dropped'] == sent
    obj = got[channel][0]
    assert obj.symbol == 'BTC-USDC-PERP'


def test_a_trade_id_far_ahead_is_dropped_counted_and_does_not_freeze_trades(caplog):
    import asyncio
    f, got = _recording_feed([TRADES])
    stream, good = GOOD_FRAMES[TRADES]

    async def run():
        for trade_id in (100, 101, 10**9 + 101, 102, 103, 104):
            await f.message_handler(_frame(stream, {**good, 't': trade_id}), None, 1.0)

    with caplog.at_level(logging.WARNING, logger=package_log.root()):
        asyncio.run(run())
    assert [t.id for t in got[TRADES]] == ['100', '101', '102', '103', '104']
    snap = f.metrics_snapshot()
    assert snap['trades']['BTC-USDC-PERP']['implausible'] == 1 and snap['parse_errors'] == 1
    assert snap['trades']['BTC-USDC-PERP']['last_id'] == 104
    assert any('implausible id' in r.getMessage() for r in caplog.records)


def test_a_quiet_closed_kline_gives_no_candle_and_no_error():
    import asyncio
    f, got = _recording_feed([CANDLES])
    stream, good = GOOD_FRAMES[CANDLES]
    quiet = {**good, 'o': None, 'h': None, 'l': None, 'c': None, 'v': None, 'n': 0}

    async def run():
        await f.message_handler(_frame(stream, quiet), None, 1.0)
        await f.message_handler(_frame(stream, good), None, 1.0)

    asyncio.run(run())
    assert len(got[CANDLES]) == 1 and got[CANDLES][0].close == Decimal('98.97')
    snap = f.metrics_snapshot()
    assert snap['parse_errors'] == 0 and snap['dropped'] == 0
    assert not any('parse' in reason for reason in f.health().reasons)


# -- what to subscribe: symbols='all', market_types, shard, and requests that would subscribe nothing


def test_symbols_all_builds_without_network_io_and_plans_its_streams_once_running():
    f = feed(symbols='all', channels=[TRADES, L2_BOOK, FUNDING], market_types=['perp'], shard=(1, 4))
    assert f._ctx.rest_created is None and names(f) == [] and f.followed_symbols == []
    assert f._selection.market_types == {'PERP'} and f._selection.shard == (1, 4)
    assert set(f._wanted) == {TRADES, L2_BOOK, FUNDING}
    # a config file may say "symbols: all"
    assert feed(symbols=' ALL ', channels=[TRADES])._selection is not None


@pytest.mark.parametrize('kwargs,message', [
    (dict(symbols='all', channels=[TRADES], market_types='futures'),
     "'futures' is not a market type; choose from 'spot', 'perp'"),
    (dict(symbols='all', channels=[TRADES], market_types=[]), 'market_types is empty'),
    (dict(symbols='all', channels=[TRADES], shard=(4, 4)), r'shard index must be in 0\.\.3'),
    (dict(symbols='all', channels=[TRADES], shard=(0, 0)), 'shard count must be >= 1'),
    (dict(symbols='all', channels=[TRADES], shard=3), 'shard must be a pair'),
    (dict(symbols='all'), "symbols='all' needs channels="),
    (dict(symbols='all', subscription={TRADES: ['SOL-USDC']}), "symbols='all' goes with channels="),
    (dict(symbols=['SOL-USDC'], channels=[TRADES], market_types='spot'), "market_types= filters symbols='all'"),
    (dict(symbols=['SOL-USDC'], channels=[TRADES], shard=(0, 2)), "shard=.* splits symbols='all'"),
    (dict(symbols='SOL-USDC', channels=[TRADES]), "symbols must be a list of symbols"),
    (dict(subscription={TRADES: []}), r"subscription\['trades'\] has no symbols: it would subscribe nothing"),
    (dict(subscription={TRADES: 'all'}), r"for every market: symbols='all', channels="),
    (dict(subscription={}), 'subscription must map channels to lists of symbols'),
    (dict(channels=[TRADES]), "channels=.* needs symbols=: a list such as \\['SOL-USDC'\\], or 'all'"),
    (dict(symbols=['SOL-USDC']), 'symbols= needs channels='),
    (dict(symbols=[], channels=[TRADES]), 'symbols=\\[\\] subscribes nothing'),
])
def test_requests_that_are_malformed_or_would_subscribe_nothing_say_what_to_give(kwargs, message):
    with pytest.raises(BackpackConfigError, match=message):
        feed(**kwargs)


def test_account_channels_alone_still_mean_every_market():
    cfg = dict(OFFLINE, enable_private_channels=True, auth={'private_key': '4' * 43 + '='})
    f = feed(config=cfg, subscription={TRADES: ['SOL-USDC'], 'order_info': []})
    assert f._account.filters['order_info'] is None


async def test_add_and_remove_symbols_need_a_running_feed():
    f = feed(symbols=['SOL-USDC'], channels=[TRADES])
    with pytest.raises(BackpackConfigError, match='add_symbols changes a running feed; this one is not started'):
        await f.add_symbols(['BTC-USDC'])
    with pytest.raises(BackpackConfigError, match='remove_symbols changes a running feed'):
        await f.remove_symbols(['SOL-USDC'])
