"""The documentation stands on its own: every file it names is in the repository.

README.md and the pages under docs/ are read by users of a checkout or of the published
package, who have neither this project's design notes nor its API notes. A path (``docs/...``,
``bench/throughput.py``), a markdown link or a ``.md`` name in them must therefore exist here;
a reference to a note outside the repository fails this test.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').rglob('*.md'))]

# A relative path with a folder and a file extension: docs/exchanges/backpack.md, bench/e2e.py.
PATH = re.compile(r'(?<![\w./~-])((?:[\w.-]+/)+[\w.-]+\.(?:md|py|toml|yaml|yml|cfg|txt|sh|json))\b')
# A bare markdown file name: DESIGN.md, backpack-api.md.
MD_NAME = re.compile(r'(?<![\w./-])([\w.-]+\.md)\b')
# The target of a markdown link: [text](target).
LINK = re.compile(r'\]\(([^)\s]+)\)')
# Notes of the project's own that are not part of the repository.
OUTSIDE_NOTES = re.compile(r'\bDESIGN\b|backpack-api|\bseeds?/')


def _references(text: str) -> set:
    found = set(PATH.findall(text)) | set(MD_NAME.findall(text))
    for target in LINK.findall(text):
        if not re.match(r'[a-z]+:', target) and not target.startswith('#'):
            found.add(target.split('#', 1)[0])
    return {ref for ref in found if ref}


def _exists(ref: str, page: Path) -> bool:
    if '/' in ref:
        return (ROOT / ref).exists() or (page.parent / ref).exists()
    return any(ROOT.rglob(ref)) if not ref.startswith('.') else True


@pytest.mark.parametrize('page', PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_page_names_is_in_the_repository(page):
    text = page.read_text()
    missing = sorted(ref for ref in _references(text) if not _exists(ref, page))
    assert missing == [], f'{page.relative_to(ROOT)} names files that are not in the repository: {missing}'
    outside = sorted({m.group(0) for m in OUTSIDE_NOTES.finditer(text)})
    assert outside == [], f'{page.relative_to(ROOT)} points at notes outside the repository: {outside}'


def test_the_check_catches_what_it_is_for(tmp_path):
    page = tmp_path / 'page.md'
    text = ('applied in sequence (backpack-api.md section 9); see DESIGN.md section 7, '
            '`cryptofeed/exchanges/backpack/ccxt_adapters.py` and [the runbook](docs/runbooks/nothing.md)')
    refs = _references(text)
    assert {'backpack-api.md', 'DESIGN.md', 'cryptofeed/exchanges/backpack/ccxt_adapters.py',
            'docs/runbooks/nothing.md'} <= refs
    assert not any(_exists(ref, page) for ref in refs)
    assert _references('see `docs/exchanges/backpack.md` and [flag](docs/exchanges/backpack.md#native)') == {
        'docs/exchanges/backpack.md'}


def test_the_ccxt_page_no_longer_calls_native_balances_in_progress():
    text = (ROOT / 'docs' / 'migrations' / 'backpack_ccxt.md').read_text()
    assert 'in progress' not in text
    row = [line for line in text.splitlines() if line.startswith('| `BALANCES` |')][-1]   # the comparison table
    assert '/api/v1/capital' in row and 'account.balanceUpdate' in row
