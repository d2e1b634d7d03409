"""The host for cryptofeed 2.x (2.4.1 on Python 3.10/3.11, 2.5.0 on 3.12).

Importing it binds the core's records to cryptofeed 2.x's own types (market data and account
alike, so existing callbacks and backends see the classes they know) and hands REST responses to
cryptofeed's raw-data recorder.
"""
from cryptofeed.symbols import Symbol
from cryptofeed.types import (
    Balance, Candle, Fill, Funding, Index, Liquidation, OpenInterest, OrderBook, OrderInfo, Position, Ticker, Trade,
)

from cryptofeed.exchanges.backpack.core import records
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.hosts.cf2.recording import record_rest_response

records.bind(Trade=Trade, Ticker=Ticker, Candle=Candle, Funding=Funding, Index=Index, OpenInterest=OpenInterest,
             Liquidation=Liquidation, OrderBook=OrderBook, Symbol=Symbol, OrderInfo=OrderInfo, Fill=Fill,
             Position=Position, Balance=Balance)
BackpackRestClient.tap = staticmethod(record_rest_response)
