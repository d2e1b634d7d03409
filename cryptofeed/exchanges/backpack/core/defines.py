"""Names and values the core writes into its objects, spelled as cryptofeed spells them.

The core imports nothing from cryptofeed, so the strings it needs live here: the exchange id,
channel names, sides, order statuses and types, liquidity and instrument types. Each has the
value of the constant of the same name in ``cryptofeed.defines`` on every line that defines it
(2.4.1, 2.5.0); on 3.0, which dropped the account channels and the order vocabulary, these are
the names user code imports (``from cryptofeed.exchanges.backpack import FILLS``). A unit test
holds them equal to the installed cryptofeed's.
"""
from __future__ import annotations

BACKPACK = 'BACKPACK'

# Market-data channels (cryptofeed.defines on every line).
L2_BOOK = 'l2_book'
TRADES = 'trades'
TICKER = 'ticker'
FUNDING = 'funding'
OPEN_INTEREST = 'open_interest'
LIQUIDATIONS = 'liquidations'
INDEX = 'index'
CANDLES = 'candles'

# Account channels (cryptofeed 2.x; this package's own names on 3.0).
ORDER_INFO = 'order_info'
FILLS = 'fills'
BALANCES = 'balances'
POSITIONS = 'positions'

ACCOUNT_CHANNELS = (ORDER_INFO, FILLS, POSITIONS, BALANCES)
MARKET_CHANNELS = (L2_BOOK, TRADES, TICKER, FUNDING, OPEN_INTEREST, LIQUIDATIONS, INDEX, CANDLES)

BUY = 'buy'
SELL = 'sell'
BID = 'bid'
ASK = 'ask'

MAKER = 'maker'
TAKER = 'taker'

LONG = 'long'
SHORT = 'short'
BOTH = 'both'

LIMIT = 'limit'
MARKET = 'market'
TRIGGER_LIMIT = 'trigger-limit'
TRIGGER_MARKET = 'trigger-market'

OPEN = 'open'
PENDING = 'pending'
FILLED = 'filled'
PARTIAL = 'partial'
CANCELLED = 'cancelled'
EXPIRED = 'expired'
FAILED = 'failed'

SPOT = 'spot'
PERPETUAL = 'perpetual'
