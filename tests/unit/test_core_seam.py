"""The core imports nothing from cryptofeed, and its names equal cryptofeed's where both exist."""
import ast
import pathlib
import subprocess
import sys
import textwrap
from decimal import Decimal

import cryptofeed.defines as cf_defines
import pytest

import cryptofeed.exchanges.backpack as package
from cryptofeed.exchanges.backpack.core import account_types, defines, records

CORE = pathlib.Path(package.__file__).parent / 'core'
CORE_PACKAGE = 'cryptofeed.exchanges.backpack.core'


def _core_modules():
    for path in sorted(CORE.rglob('*.py')):
        parts = path.relative_to(CORE).with_suffix('').parts
        if parts[-1] == '__init__':
            parts = parts[:-1]
        yield path, '.'.join((CORE_PACKAGE,) + parts)


def _imported_names(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def test_no_core_module_names_cryptofeed_outside_the_core():
    found = [f'{path.relative_to(CORE)}:{line} imports {name}'
             for path, _ in _core_modules() for line, name in _imported_names(path)
             if name.split('.')[0] == 'cryptofeed' and not (name + '.').startswith(CORE_PACKAGE + '.')]
    assert found == []


def test_every_core_module_imports_with_cryptofeed_refused():
    """Import each core module in a fresh interpreter where any cryptofeed module outside the core
    raises ImportError (the parent packages are empty stand-ins)."""
    modules = [name for _, name in _core_modules()]
    script = textwrap.dedent(f'''
        import importlib, importlib.abc, importlib.machinery, sys, types
        core_dir = {str(CORE)!r}
        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] == 'cryptofeed' and not (name + '.').startswith({CORE_PACKAGE + '.'!r}):
                    raise ImportError('refused: ' + name)
        for parent in ('cryptofeed', 'cryptofeed.exchanges', 'cryptofeed.exchanges.backpack'):
            stand_in = types.ModuleType(parent)
            stand_in.__path__ = []
            sys.modules[parent] = stand_in
        sys.modules['cryptofeed.exchanges.backpack'].__path__ = [core_dir.rsplit('/', 1)[0]]
        sys.meta_path.insert(0, Refuse())
        for name in {modules!r}:
            importlib.import_module(name)
        print(len({modules!r}))
    ''')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(modules) > 20


def test_the_core_refuses_a_stand_in_that_reaches_cryptofeed():
    """The refusing finder above does refuse: a module that imports cryptofeed fails under it."""
    script = textwrap.dedent('''
        import importlib.abc, sys
        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] == 'cryptofeed':
                    raise ImportError('refused: ' + name)
        sys.meta_path.insert(0, Refuse())
        import cryptofeed.defines
    ''')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and 'refused: cryptofeed' in result.stderr


def test_names_equal_cryptofeeds_where_the_line_defines_them():
    names = [n for n in dir(defines) if n.isupper() and isinstance(getattr(defines, n), str)]
    shared = [n for n in names if hasattr(cf_defines, n)]
    assert len(shared) >= 12
    assert {n: getattr(defines, n) for n in shared} == {n: getattr(cf_defines, n) for n in shared}


def test_records_unbound_refuse_with_what_to_do():
    unbound = records._Unbound('Trade')
    with pytest.raises(RuntimeError, match='import cryptofeed.exchanges.backpack'):
        unbound('BACKPACK')
    assert not isinstance(object(), unbound)
    with pytest.raises(TypeError, match='not bindable: Nope'):
        records.bind(Nope=int)


def test_the_host_bound_every_record():
    assert all(not isinstance(getattr(records, name), records._Unbound) for name in records.BINDABLE)


# ---------------------------------------------------------------- this package's account types


def test_own_account_types_match_cryptofeed_2_to_dict():
    import cryptofeed.types
    on_2x = hasattr(cf_defines, 'BALANCES')  # 3.0 has no account types to compare with
    args = {
        'OrderInfo': ('BACKPACK', 'SOL-USDC', '1', 'buy', 'open', 'limit', Decimal('1'), Decimal('2'), Decimal('2'), 1.5),
        'Fill': ('BACKPACK', 'SOL-USDC', 'buy', Decimal('1'), Decimal('2'), Decimal('0.1'), 't1', 'o1', 'limit',
                 'maker', 1.5),
        'Position': ('BACKPACK', 'SOL-PERP', Decimal('1'), Decimal('2'), 'long', Decimal('-0.5'), 1.5),
        'Balance': ('BACKPACK', 'SOL', Decimal('1'), Decimal('0')),
    }
    for name, values in args.items():
        ours = getattr(account_types, name)(*values)
        assert list(ours.to_dict()) == list(ours._fields)
        assert ours == getattr(account_types, name)(*values) and hash(ours) == hash(getattr(account_types, name)(*values))
        if on_2x:
            theirs = getattr(cryptofeed.types, name)(*values)
            assert ours.to_dict() == theirs.to_dict()
            assert ours.to_dict(numeric_type=float, none_to='-') == theirs.to_dict(numeric_type=float, none_to='-')
            assert list(ours.to_dict()) == list(theirs.to_dict())
            assert repr(ours) == repr(theirs)


def test_own_account_types_are_immutable_but_orders_take_a_status():
    order = account_types.OrderInfo('BACKPACK', 'SOL-USDC', '1', 'buy', 'open', 'market', None, Decimal('2'),
                                    Decimal('2'), 1.5, client_order_id=7)
    with pytest.raises(AttributeError, match='not writable'):
        order.price = Decimal(1)
    order.set_status('filled')
    assert order.status == 'filled'
    # a missing number stays missing under numeric_type (cryptofeed 2.x raises TypeError here)
    assert order.to_dict(numeric_type=float)['price'] is None
    assert order.to_dict(numeric_type=float, none_to='')['price'] is None
    assert order.to_dict(none_to='-')['price'] == '-' and order.to_dict(none_to='-')['account'] == '-'
    again = account_types.OrderInfo.from_dict(order.to_dict(numeric_type=str))
    assert again.amount == Decimal('2') and again.price is None and again.client_order_id == 7
    assert order != account_types.Balance('BACKPACK', 'SOL', Decimal('1'), Decimal('0'))


def test_the_package_exports_the_account_and_order_names_with_cryptofeed_2_values():
    exported = {name: getattr(package, name) for name in package.ORDER_NAMES + ['ORDER_INFO', 'FILLS', 'POSITIONS',
                                                                                'BALANCES']}
    assert all(name in package.__all__ for name in exported)
    assert exported == {name: getattr(defines, name) for name in exported}
    assert {n: v for n, v in exported.items() if hasattr(cf_defines, n)} == {
        n: getattr(cf_defines, n) for n in exported if hasattr(cf_defines, n)}


def test_the_package_exports_the_lines_account_types():
    import cryptofeed.types
    for name in ('OrderInfo', 'Fill', 'Position', 'Balance'):
        exported = getattr(package, name)
        assert exported is getattr(records, name)
        expected = getattr(cryptofeed.types, name, None) or getattr(account_types, name)
        assert exported is expected


def test_the_package_logs_under_the_lines_logger(caplog):
    from cryptofeed.exchanges.backpack.core import log
    expected = 'feedhandler' if package.CRYPTOFEED_LINE == 2 else 'cryptofeed'
    assert log.root() == expected
    with caplog.at_level('INFO', logger=expected):
        log.get('.backpack.test').info('hello %s', 'line')
    assert [(r.name, r.getMessage()) for r in caplog.records] == [(expected + '.backpack.test', 'hello line')]
