"""The host for cryptofeed 3.x (3.0 on Python 3.13).

Importing it binds the core's market-data records to cryptofeed 3's types. cryptofeed 3 has no
account types, so ``ORDER_INFO``, ``FILLS``, ``POSITIONS`` and ``BALANCES`` deliver this
package's own (``core/account_types.py``, the records' defaults). REST responses go to
cryptofeed 3's capture recorder (``capture.py``); the package logs under ``cryptofeed``, as 3 does.
"""
from cryptofeed.symbols import Symbol
from cryptofeed.types import Candle, Funding, Index, Liquidation, OpenInterest, OrderBook, Ticker, Trade

from cryptofeed.exchanges.backpack.core import log, records
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.hosts.cf3.capture import record_rest_response

records.bind(Trade=Trade, Ticker=Ticker, Candle=Candle, Funding=Funding, Index=Index, OpenInterest=OpenInterest,
             Liquidation=Liquidation, OrderBook=OrderBook, Symbol=Symbol)
BackpackRestClient.tap = staticmethod(record_rest_response)
log.set_root('cryptofeed')  # cryptofeed 3 logs under 'cryptofeed' (FeedHandler's log: config sets it up)
