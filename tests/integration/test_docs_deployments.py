"""docs/deployments/backpack_sharded.md, every block run as a user would run it.

The shell block runs in bash from a copy of the repository's ``examples/`` (in ``tmp_path``, so
its files land there), against the Redis the test starts: the documented ports (8765 simulator,
6379 Redis) are replaced by free ones. The Python consumer block runs after it, on the streams it
left. The systemd unit's ``ExecStart`` is parsed by the example's own argument parser for each
instance. The Kafka block builds its objects without connecting (no Kafka server in the tests).
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from cryptofeed.exchanges.backpack.core.sharding import shard_of
from tests.integration.services import free_port, redis_server  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / 'docs' / 'deployments' / 'backpack_sharded.md'


def blocks() -> list:
    return re.findall(r'```(\w+)\n(.*?)```', DOC.read_text(), re.S)


def block(lang: str, index: int = 0) -> str:
    """The ``index``-th block of language ``lang``."""
    return [body for kind, body in blocks() if kind == lang][index]


async def run(argv, cwd: Path, timeout: float = 120) -> str:
    """Run ``argv`` in a session of its own; afterwards kill whatever of it is left."""
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout)
    finally:  # a failed or stuck script leaves no simulator or shard behind
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await process.wait()
    assert process.returncode == 0, stderr.decode()[-3000:]
    return stdout.decode()


def test_the_page_has_the_documented_blocks():
    assert [lang for lang, _ in blocks()] == ['sh', 'python', 'ini', 'python']


async def test_three_shards_and_the_consumer_as_documented(redis_server, tmp_path):
    shutil.copytree(ROOT / 'examples', tmp_path / 'examples')
    redis_port, sim_port = str(urlsplit(redis_server).port), str(free_port())
    script = block('sh').replace('6379', redis_port).replace('8765', sim_port)
    bin_dir = Path(sys.executable).parent   # `python` is this interpreter
    shell = f'export PATH={shlex.quote(str(bin_dir))}:$PATH\nset -e\n' + script
    out = await run(['bash', '-c', shell], tmp_path, timeout=180)
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary['markets'], summary['books']) == (59, 59), summary
    assert summary['markets_per_shard'] == {'0': 19, '1': 18, '2': 22}, summary
    for i in range(3):
        reports = [json.loads(line) for line in (tmp_path / f'shard{i}.log').read_text().splitlines()]
        assert reports and all(shard_of(s, 3) == i for s in reports[-1]['following'])

    code = block('python', 0).replace('6379', redis_port)
    out = await run([sys.executable, '-c', code], tmp_path)
    assert out.splitlines() == [f'SOL-USDC shard {shard_of("SOL-USDC", 3)} spread True trades True',
                                f'BTC-USDC-PERP shard {shard_of("BTC-USDC-PERP", 3)} spread True trades True']


def test_the_systemd_unit_starts_each_shard_with_the_examples_options():
    spec = importlib.util.spec_from_file_location('backpack_sharded', ROOT / 'examples' / 'backpack_sharded.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exec_start = re.search(r'^ExecStart=(.*)$', block('ini'), re.M).group(1)
    argv = shlex.split(exec_start)
    assert argv[1].endswith('examples/backpack_sharded.py')
    for instance in range(3):
        args = module.parse_args([arg.replace('%i', str(instance)) for arg in argv[2:]])
        assert (args.shard, args.of, args.redis, args.kafka) == (instance, 3, 'redis://127.0.0.1:6379', None)
        feed = module.build_feed(args)   # no network in constructors
        assert feed._selection.shard == (instance, 3)


async def test_the_kafka_block_builds_its_backends_without_connecting(tmp_path):
    out = await run([sys.executable, '-c', block('python', 1)], tmp_path)
    assert out.splitlines() == ['trades.shard1-BACKPACK-SOL-USDC', 'book.shard1-BACKPACK-SOL-USDC']
