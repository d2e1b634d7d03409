"""``python -m cryptofeed.exchanges.backpack.history``: Backpack trades or candles to CSV or Parquet files.

Use it to get a window of history (a day, a month) into files without writing a script:

    python -m cryptofeed.exchanges.backpack.history SOL-USDC BTC-USDC-PERP --channel trades \\
        --start 2026-09-01 --end 2026-10-01 --format parquet --out-dir data

One file per symbol, named after the symbol, the channel (and interval) and the window in UTC,
e.g. ``SOL-USDC_trades_20260901T000000_20261001T000000.csv``. It is built on the feed's REST
history (``BackpackFeed.trades`` / ``candles``), so the paging is exact (every trade once, in id
order) and the requests share the history pacer (``--rate-limit``, 30 per 60 s by default, as the
exchange allows).

What is written:

* ``trades``: ``timestamp`` (epoch seconds, ms precision), ``symbol``, ``id``, ``side``
  (``buy``/``sell``: the taker's side), ``amount``, ``price``; every trade with
  ``start <= timestamp <= end``, oldest first.
* ``candles``: ``start``, ``stop`` (epoch seconds), ``symbol``, ``interval``, ``open``, ``high``,
  ``low``, ``close``, ``volume``, ``trades``; the closed candles that start in ``[start, end)``.
  An interval without trades has no candle (Backpack gives it no prices).

Prices and sizes are exact: decimal text in CSV, ``decimal128(38, 18)`` in Parquet (the
``[parquet]`` extra installs pyarrow).

**Resuming.** Rows go to ``<file>.partial`` (CSV, flushed after every page) or to a folder of
part files ``<file>.parts/`` (Parquet, one finished file per page), next to a state file
``.<symbol>_<channel>[_<interval>].<format>.download.json`` holding the arguments as given and
the window they resolved to. When the run is interrupted (Ctrl-C, a kill, a network failure),
running the same command again finds the state file, reads the last row written and continues
after it: the trade after the last trade id, the candle after the last candle start, so no row
is written twice and none is skipped (a CSV line cut by a kill is dropped and fetched again).
Relative times (``now-30m``) keep the window of the first run. When the window is complete the
rows become ``<file>`` (the Parquet parts are merged into one file) and the state file is
removed. ``--restart`` discards an unfinished download instead.

Progress goes to stderr: a bar redrawn in place on a terminal, a line every 10 s otherwise
(``--quiet`` turns it off). Each finished file is reported on stdout. Exit status: 0 done,
1 a download failed (rerun to resume), 2 bad arguments, 130 interrupted (rerun to resume).
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, TextIO

from cryptofeed.exchanges.backpack.core.config import BackpackConfig
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError, BackpackError
from cryptofeed.exchanges.backpack.core.rest.paging import INTERVAL_SECONDS, MAX_KLINES, kline_request_count

__all__ = ['TRADE_COLUMNS', 'CANDLE_COLUMNS', 'parse_time', 'Download', 'main']

PROG = 'python -m cryptofeed.exchanges.backpack.history'
TRADE_COLUMNS = ('timestamp', 'symbol', 'id', 'side', 'amount', 'price')
CANDLE_COLUMNS = ('start', 'stop', 'symbol', 'interval', 'open', 'high', 'low', 'close', 'volume', 'trades')
_DECIMAL_COLUMNS = frozenset({'amount', 'price', 'open', 'high', 'low', 'close', 'volume'})
_STATE_VERSION = 1
_RELATIVE = re.compile(r'^now(?:-(\d+(?:\.\d+)?)(s|m|h|d|w))?$')
_UNIT_S = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


class UsageError(Exception):
    """Bad arguments: the message says what to give instead."""


def parse_time(text: str, now: float, name: str) -> float:
    """Epoch seconds of ``text``: ``now``, ``now-<N><s|m|h|d|w>``, epoch seconds, or a UTC date/time
    (``2026-09-01``, ``2026-09-01 16:52:00``, ISO ``T`` and an offset accepted). Pure."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        amount, unit = match.groups()
        return now - (float(amount) * _UNIT_S[unit] if amount else 0.0)
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(f'{name} {text!r} is not a time: give a UTC date or time (2026-09-01, '
                             f'"2026-09-01 16:52:00"), epoch seconds, now or now-<N><s|m|h|d|w> (now-30m)') from None
        seconds = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    if not math.isfinite(seconds):
        raise UsageError(f'{name} {text!r} is not a finite time')
    return seconds


def _utc(seconds: float, compact: bool = False) -> str:
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime('%Y%m%dT%H%M%S' if compact else '%Y-%m-%d %H:%M:%S')


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f'{seconds:.0f} s'
    if seconds < 7200:
        return f'{seconds / 60:.0f} min'
    return f'{seconds / 3600:.1f} h'


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, 'f')
    if isinstance(value, float):
        return repr(value)
    return '' if value is None else str(value)


# --------------------------------------------------------------------------------------------
# Where rows go
# --------------------------------------------------------------------------------------------

class CsvSink:
    """Rows appended to ``<path>.partial`` and flushed after every page; renamed to ``path`` when done."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path, self.columns = path, tuple(columns)
        self.partial = path.with_name(path.name + '.partial')
        self._file: Optional[TextIO] = None

    def last_row(self) -> Optional[Dict[str, str]]:
        """The last complete row written, after cutting a line a kill left unfinished."""
        if not self.partial.exists():
            return None
        with open(self.partial, 'rb+') as f:
            data = f.read()
            keep = data.rfind(b'\n') + 1
            if keep != len(data):
                f.truncate(keep)
            data = data[:keep]
        lines = data.decode('utf-8').splitlines()
        if len(lines) < 2:
            return None
        header, last = next(csv.reader([lines[0]])), next(csv.reader([lines[-1]]))
        if tuple(header) != self.columns:
            raise UsageError(f'{self.partial} does not have the columns of this download; pass --restart')
        return dict(zip(header, last))

    def rows_written(self) -> int:
        if not self.partial.exists():
            return 0
        with open(self.partial, 'rb') as f:
            return max(0, sum(1 for _ in f) - 1)

    def append(self, rows: List[Dict[str, Any]]) -> None:
        if self._file is None:
            fresh = not self.partial.exists() or self.partial.stat().st_size == 0
            self._file = open(self.partial, 'a', newline='', encoding='utf-8')
            if fresh:
                csv.writer(self._file).writerow(self.columns)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow([_text(row[column]) for column in self.columns])
        self._file.write(buffer.getvalue())   # one write per page
        self._file.flush()
        os.fsync(self._file.fileno())

    def finish(self) -> None:
        self.close()
        if not self.partial.exists():
            self.append([])
            self.close()
        os.replace(self.partial, self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        self.partial.unlink(missing_ok=True)


def require_pyarrow():
    """``(pyarrow, pyarrow.parquet)``, or the ``UsageError`` saying how to install them."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'cryptofeed-backpack[parquet]'") from None
    return pyarrow, pyarrow.parquet


class ParquetSink:
    """One finished Parquet file per page under ``<path>.parts/``, merged into ``path`` when done.

    A part is written under a temporary name and renamed, so a kill leaves only whole parts."""

    def __init__(self, path: Path, columns: Sequence[str]):
        pyarrow, parquet = require_pyarrow()
        self.pa, self.pq = pyarrow, parquet
        self.path, self.columns = path, tuple(columns)
        self.parts = path.with_name(path.name + '.parts')
        types = {'timestamp': pyarrow.float64(), 'start': pyarrow.float64(), 'stop': pyarrow.float64(),
                 'id': pyarrow.int64(), 'trades': pyarrow.int64()}
        self.schema = pyarrow.schema([(c, pyarrow.decimal128(38, 18) if c in _DECIMAL_COLUMNS
                                       else types.get(c, pyarrow.string())) for c in self.columns])

    def _part_files(self) -> List[Path]:
        return sorted(self.parts.glob('part-*.parquet')) if self.parts.is_dir() else []

    def last_row(self) -> Optional[Dict[str, Any]]:
        files = self._part_files()
        if not files:
            return None
        table = self.pq.read_table(files[-1])
        if table.num_rows == 0:
            return None
        return {name: table.column(name)[table.num_rows - 1].as_py() for name in table.column_names}

    def rows_written(self) -> int:
        return sum(self.pq.ParquetFile(f).metadata.num_rows for f in self._part_files())

    def append(self, rows: List[Dict[str, Any]]) -> None:
        if not rows:
            return
        self.parts.mkdir(parents=True, exist_ok=True)
        files = self._part_files()
        number = int(files[-1].stem.split('-')[1]) + 1 if files else 1
        table = self.pa.Table.from_pylist([{c: row[c] for c in self.columns} for row in rows], schema=self.schema)
        target = self.parts / f'part-{number:06d}.parquet'
        temporary = self.parts / f'.part-{number:06d}.parquet.tmp'
        self.pq.write_table(table, temporary)
        os.replace(temporary, target)

    def finish(self) -> None:
        files = self._part_files()
        tables = [self.pq.read_table(f) for f in files] or [self.schema.empty_table()]
        temporary = self.path.with_name('.' + self.path.name + '.tmp')
        self.pq.write_table(self.pa.concat_tables(tables), temporary)
        os.replace(temporary, self.path)
        shutil.rmtree(self.parts, ignore_errors=True)

    def close(self) -> None:
        pass

    def discard(self) -> None:
        shutil.rmtree(self.parts, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Progress on stderr
# --------------------------------------------------------------------------------------------

class Progress:
    """A text progress bar: redrawn in place on a terminal, else one line every ``every_s`` seconds."""

    def __init__(self, label: str, start: float, end: float, stream: Optional[TextIO], every_s: float = 10.0):
        self.label, self.start, self.end, self.stream = label, start, end, stream
        self.tty = bool(stream is not None and stream.isatty())
        self.every_s = every_s if not self.tty else 0.1
        self.began = time.monotonic()
        self._last = 0.0

    def update(self, rows: int, reached: float, waited_s: float, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        span = self.end - self.start
        fraction = 1.0 if span <= 0 else min(1.0, max(0.0, (reached - self.start) / span))
        bar = '#' * int(fraction * 30)
        line = (f'{self.label} [{bar:<30}] {fraction:4.0%} {rows:,} rows, up to {_utc(max(reached, self.start))} UTC, '
                f'{_duration(now - self.began)} elapsed, {_duration(waited_s)} waiting for the rate limit')
        if self.tty:
            self.stream.write('\r' + line + '\x1b[K')
        else:
            self.stream.write(line + '\n')
        self.stream.flush()

    def done(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write('\n')
            self.stream.flush()


# --------------------------------------------------------------------------------------------
# One download
# --------------------------------------------------------------------------------------------

@dataclass
class Download:
    """One symbol's file: the window, where its rows go and the state that makes it resumable."""

    symbol: str
    channel: str
    interval: Optional[str]
    fmt: str
    start_spec: str
    end_spec: str
    start: float
    end: float
    out_dir: Path

    @property
    def stem(self) -> str:
        return f'{self.symbol}_{self.channel}' + (f'_{self.interval}' if self.interval else '')

    @property
    def path(self) -> Path:
        return self.out_dir / f'{self.stem}_{_utc(self.start, True)}_{_utc(self.end, True)}.{self.fmt}'

    @property
    def state_path(self) -> Path:
        return self.out_dir / f'.{self.stem}.{self.fmt}.download.json'

    def state(self) -> Dict[str, Any]:
        return {'version': _STATE_VERSION, 'symbol': self.symbol, 'channel': self.channel, 'interval': self.interval,
                'format': self.fmt, 'start_spec': self.start_spec, 'end_spec': self.end_spec, 'start': self.start,
                'end': self.end, 'file': self.path.name}

    def save_state(self) -> None:
        temporary = self.state_path.with_name(self.state_path.name + '.tmp')
        temporary.write_text(json.dumps(self.state(), indent=1))
        os.replace(temporary, self.state_path)

    def sink(self):
        columns = TRADE_COLUMNS if self.channel == 'trades' else CANDLE_COLUMNS
        return (CsvSink if self.fmt == 'csv' else ParquetSink)(self.path, columns)


def _resume(download: Download, restart: bool) -> Download:
    """The download to run: the unfinished one of the same command when its state file is
    there (its window, fixed at the first run), else ``download`` itself."""
    path = download.state_path
    if not path.exists():
        return download
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        raise UsageError(f'{path} is not a download state file; remove it (and its partial data) to start over') from None
    same = all(saved.get(key) == value for key, value in download.state().items()
               if key not in ('start', 'end', 'file'))
    if restart or not same:
        if not restart:
            raise UsageError(
                f'an unfinished download of {download.symbol} {download.channel} for another window '
                f'(--start {saved.get("start_spec")!r} --end {saved.get("end_spec")!r}) is in {download.out_dir}: '
                f'rerun that command to finish it, or pass --restart to discard it')
        old = Download(download.symbol, download.channel, download.interval, download.fmt, saved.get('start_spec', ''),
                       saved.get('end_spec', ''), float(saved['start']), float(saved['end']), download.out_dir)
        old.sink().discard()
        path.unlink()
        return download
    return Download(download.symbol, download.channel, download.interval, download.fmt, download.start_spec,
                    download.end_spec, float(saved['start']), float(saved['end']), download.out_dir)


async def _run_trades(feed, download: Download, sink, progress: Progress, pacer) -> int:
    last = sink.last_row()
    rows = sink.rows_written()
    after_id = int(last['id']) if last else None
    begin = float(last['timestamp']) if last else download.start
    progress.update(rows, begin, pacer.waited_s, force=True)
    async for page in feed.trades(download.symbol, start=begin, end=download.end):
        fresh = [row for row in page if after_id is None or row['id'] > after_id]
        if fresh:
            sink.append(fresh)
            rows += len(fresh)
            after_id = fresh[-1]['id']
            progress.update(rows, fresh[-1]['timestamp'], pacer.waited_s)
    return rows


async def _run_candles(feed, download: Download, sink, progress: Progress, pacer) -> int:
    last = sink.last_row()
    rows = sink.rows_written()
    after = float(last['start']) if last else None
    begin = after if after is not None else download.start
    progress.update(rows, begin, pacer.waited_s, force=True)
    size = INTERVAL_SECONDS.get(feed.candle_interval_map[download.interval])
    requests = kline_request_count(math.floor(begin), math.ceil(download.end), size)
    async for page in feed.candles(download.symbol, start=begin, end=download.end, interval=download.interval,
                                   max_requests=max(requests, 1)):
        fresh = [{'start': c.start, 'stop': c.stop, 'symbol': c.symbol, 'interval': c.interval, 'open': c.open,
                  'high': c.high, 'low': c.low, 'close': c.close, 'volume': c.volume, 'trades': c.trades}
                 for c in page if c.closed and c.start >= download.start and (after is None or c.start > after)]
        if fresh:
            sink.append(fresh)
            rows += len(fresh)
            after = fresh[-1]['start']
            progress.update(rows, fresh[-1]['stop'], pacer.waited_s)
    return rows


async def _download_all(feed, downloads: List[Download], restart: bool, progress_stream: Optional[TextIO],
                        out: TextIO) -> None:
    pacer = feed._history_pacer()
    try:
        for planned in downloads:
            download = _resume(planned, restart)
            sink = download.sink()
            if restart and download.path.exists() and not download.state_path.exists():
                download.path.unlink()
            if download.path.exists() and not download.state_path.exists():
                print(f'{download.symbol} {download.channel}: {download.path} exists already: nothing to do '
                      f'(delete it to download again)', file=out)
                continue
            resumed = download.state_path.exists()
            download.save_state()
            label = f'{download.symbol} {download.channel}' + (f' {download.interval}' if download.interval else '')
            if resumed and progress_stream is not None:
                print(f'{label}: resuming the unfinished download of {_utc(download.start)} .. {_utc(download.end)} UTC',
                      file=progress_stream)
            progress = Progress(label, download.start, download.end, progress_stream)
            began = time.monotonic()
            try:
                run = _run_trades if download.channel == 'trades' else _run_candles
                rows = await run(feed, download, sink, progress, pacer)
            finally:
                sink.close()
            progress.update(rows, download.end, pacer.waited_s, force=True)
            progress.done()
            sink.finish()
            download.state_path.unlink()
            print(f'{label}: {rows} rows, {_utc(download.start)} .. {_utc(download.end)} UTC -> {download.path} '
                  f'({_duration(time.monotonic() - began)})', file=out)
    finally:
        await feed.rest.close()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Download Backpack trades or candles to one CSV or Parquet file per symbol, at the history '
                    'rate limit, with a progress bar; rerun the same command to resume an interrupted download.',
        epilog='examples:\n'
               f'  {PROG} SOL-USDC --channel trades --start 2026-09-01 --end 2026-09-02\n'
               f'  {PROG} SOL-USDC BTC-USDC-PERP --channel candles --interval 1h --start now-30d --format parquet\n'
               f'  {PROG} SOL-USDC --channel trades --start now-30m --rest-url http://127.0.0.1:8765   # the simulator')
    parser.add_argument('symbols', nargs='+', metavar='SYMBOL', help="cryptofeed symbols: SOL-USDC, BTC-USDC-PERP")
    parser.add_argument('--channel', required=True, choices=('trades', 'candles'), help='what to download')
    parser.add_argument('--interval', help='candle interval (candles only): 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h '
                                           '1d 3d 1w 1M (default 1m)')
    parser.add_argument('--start', required=True,
                        help='UTC date or time (2026-09-01, "2026-09-01 16:52:00"), epoch seconds, or now-<N><s|m|h|d|w>')
    parser.add_argument('--end', default='now', help='the same forms (default: now); trades up to and including it, '
                                                     'candles starting before it')
    parser.add_argument('--format', default='csv', choices=('csv', 'parquet'),
                        help="csv (default) or parquet (needs pip install 'cryptofeed-backpack[parquet]')")
    parser.add_argument('--out-dir', default='.', help='folder for the files (default: the current one)')
    parser.add_argument('--restart', action='store_true',
                        help='discard an unfinished download instead of resuming it (and a finished file of the '
                             'same window)')
    parser.add_argument('--rate-limit', default='30/60', metavar='N/SECONDS',
                        help='at most N history requests in any SECONDS (default 30/60, the exchange\'s limit)')
    parser.add_argument('--config', help='cryptofeed YAML file whose backpack: section configures the REST client '
                                         '(proxies, rest_url, ca_file); default: $CRYPTOFEED_CONFIG')
    parser.add_argument('--rest-url', help='REST base URL (default https://api.backpack.exchange; the simulator '
                                           'prints its own)')
    parser.add_argument('--ca-file', help='extra CA bundle (PEM) to trust, e.g. the simulator\'s with --tls')
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    return parser


def _plan(args: argparse.Namespace, feed, now: float) -> List[Download]:
    if args.channel == 'trades' and args.interval is not None:
        raise UsageError('--interval is for --channel candles only')
    interval = (args.interval or '1m') if args.channel == 'candles' else None
    if interval is not None and interval not in feed.candle_interval_map:
        raise UsageError(f'--interval {interval!r} is not one of {" ".join(feed.candle_interval_map)}')
    start = parse_time(args.start, now, '--start')
    end = parse_time(args.end, now, '--end')
    if end > now:
        raise UsageError(f'--end {args.end!r} is in the future ({_utc(end)} UTC); history ends now')
    if start >= end:
        raise UsageError(f'--start ({_utc(start)} UTC) must be before --end ({_utc(end)} UTC)')
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise UsageError(f'--out-dir {out_dir}: no such folder')
    downloads = []
    for symbol in args.symbols:
        try:
            exchange_symbol = feed.std_symbol_to_exchange_symbol(symbol)
        except Exception:
            raise UsageError(f'{symbol!r} is not a Backpack symbol of cryptofeed\'s spelling (SOL-USDC, '
                             f'BTC-USDC-PERP)') from None
        std = feed.exchange_symbol_to_std_symbol(exchange_symbol)
        downloads.append(Download(std, args.channel, interval, args.format, args.start, args.end, start, end, out_dir))
    return downloads


def _rate_limit(text: str) -> tuple:
    match = re.fullmatch(r'\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*', text)
    if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
        raise UsageError(f'--rate-limit {text!r}: give N/SECONDS, e.g. 30/60')
    return int(match.group(1)), float(match.group(2))


def _config(args: argparse.Namespace) -> BackpackConfig:
    config = BackpackConfig.coerce(args.config)
    changes = {}
    if args.rest_url:
        changes['rest_url'] = args.rest_url
    if args.ca_file:
        changes['ca_file'] = args.ca_file
    return config.replace(**changes) if changes else config


def _estimate(downloads: Iterable[Download], feed, limit: tuple) -> Optional[str]:
    """The candle requests a run needs and their time at the rate limit (trades are paged, not counted)."""
    total = 0
    for d in downloads:
        if d.channel != 'candles':
            return None
        size = INTERVAL_SECONDS.get(feed.candle_interval_map[d.interval])
        total += kline_request_count(math.floor(d.start), math.ceil(d.end), size)
    requests, period = limit
    return (f'{total} requests to /api/v1/klines ({MAX_KLINES} candles each), about '
            f'{_duration(max(0, total - requests) / requests * period)} at {requests} per {period:g} s')


def main(argv: Optional[Sequence[str]] = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = _parser().parse_args(argv)
    try:
        limit = _rate_limit(args.rate_limit)
        config = _config(args)
        if args.format == 'parquet':
            require_pyarrow()   # missing: say so before any request
        from cryptofeed.exchanges.backpack import BackpackFeed
        feed = BackpackFeed(config=config)
        feed.history_rate_limit = limit
        downloads = _plan(args, feed, time.time())
    except (UsageError, BackpackConfigError) as exc:
        print(f'error: {exc}', file=err)
        return 2
    estimate = _estimate(downloads, feed, limit)
    if estimate and not args.quiet:
        print(f'candles: {estimate}', file=err)
    try:
        asyncio.run(_download_all(feed, downloads, args.restart, None if args.quiet else err, out))
    except UsageError as exc:
        print(f'error: {exc}', file=err)
        return 2
    except BackpackError as exc:
        print(f'\nerror: {exc}\nthe rows written so far are kept: rerun the same command to resume', file=err)
        return 1
    except KeyboardInterrupt:
        print('\ninterrupted: the rows written so far are kept; rerun the same command to resume', file=err)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
