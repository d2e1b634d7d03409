"""The Prometheus part of docs/exchanges/backpack.md ("Metrics and health"), run as a user runs it:
a simulator process, the program as written (its ports replaced by free ones), its output compared
with the page's, and the scrape job pointed at the port the program serves."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'exchanges' / 'backpack.md'
SECTION = '## Metrics and health'
SIM_PORT, METRICS_PORT = '8765', '9108'


def section_blocks() -> list:
    text = DOC.read_text()
    start = text.index(SECTION)
    end = text.find('\n## ', start + len(SECTION))
    return re.findall(r'```(\w+)\n(.*?)```', text[start:end if end != -1 else None], flags=re.S)


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


@pytest.fixture
def simulator(tmp_path):
    """The simulator of the REST API example, on a free port (another if it is taken meanwhile)."""
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen([sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator', '--markets',
                                 'SOL_USDC,SOL_USDC_PERP', '--rate', '50', '--port', port],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if line:
            break
        error = proc.communicate(timeout=30)[1]
        assert '[Errno 98]' in error, error[-2000:]
    else:
        raise AssertionError('no free port could be bound in 5 tries')
    try:
        assert json.loads(line)['rest_url'] == f'http://127.0.0.1:{port}'
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_section_has_the_program_its_output_and_a_scrape_job():
    assert [lang for lang, _ in section_blocks()] == ['python', 'console', 'yaml']


def test_the_program_serves_metrics_and_health_and_prints_what_the_page_shows(simulator, tmp_path):
    code, console, _ = [body for _, body in section_blocks()]
    assert SIM_PORT in code and METRICS_PORT in code
    code = code.replace(SIM_PORT, simulator).replace(METRICS_PORT, free_port())
    result = subprocess.run([sys.executable, '-'], input=code, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == console.splitlines()


def test_the_scrape_job_targets_the_programs_endpoint():
    code, _, job = [body for _, body in section_blocks()]
    config = yaml.safe_load(job)
    (scrape,) = config['scrape_configs']
    assert scrape['static_configs'][0]['targets'] == [f'127.0.0.1:{METRICS_PORT}']
    assert f"'metrics_port': {METRICS_PORT}" in code and f'http://127.0.0.1:{METRICS_PORT}/metrics' in code
    assert scrape.get('metrics_path', '/metrics') == '/metrics'
