"""The secret-safe, frozen pydantic layer under ``config.py``'s models.

Use ``_FrozenModel`` as the base of a configuration model: it is frozen, rejects unknown
options (suggesting the nearest valid name), and reports every problem as one
``BackpackConfigError`` (built by ``invalid_config``) that names the option and never echoes an
input value (secrets are wrapped before validation, unknown options replaced
by a placeholder). ``ProxyURL`` is a proxy URL whose password is a secret.
"""
from __future__ import annotations

import base64
import difflib
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Secret, SecretStr, ValidationError, ValidationInfo, model_validator

from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError
from cryptofeed.exchanges.backpack.core.transport.net import mask_url


class ProxyURL(Secret[str]):
    """A proxy URL whose password is a secret: ``repr``/``str``/JSON show it as ``***``.

    ``get_secret_value()`` returns the full URL for the transport.
    """

    def _display(self) -> str:
        return mask_url(self.get_secret_value())

    @property
    def scheme(self) -> str:
        return urlsplit(self.get_secret_value()).scheme.lower()


class _Redacted:
    """Stands in for a value pydantic would otherwise copy into an error (unknown options)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return '<redacted>'


_REDACTED = _Redacted()


# --------------------------------------------------------------------------------------------
# Error reporting
# --------------------------------------------------------------------------------------------

Problem = Tuple[Tuple[Any, ...], str]


def invalid_config(problems: List[Problem], source: Optional[str] = None,
                   labels: Optional[Mapping[str, str]] = None) -> BackpackConfigError:
    """The ``BackpackConfigError`` for ``problems``: one message for all of them, and the list as
    its ``problems`` attribute. ``labels`` names where an option came from (an environment
    variable, say)."""
    lines = []
    for loc, text in problems:
        path = '.'.join(str(part) for part in loc)
        label = f'{path} (from {labels[path]})' if labels and path in labels else path
        if not label:
            lines.append(text)
            continue
        # Messages that already start with the option's name read better without a prefix.
        for name in (path, str(loc[-1])):
            if text.startswith(name + ' '):
                lines.append(label + text[len(name):])
                break
        else:
            lines.append(f'{label}: {text}')
    where = f' from {source}' if source else ''
    if len(lines) == 1:
        message = f'invalid Backpack configuration{where}: {lines[0]}'
    else:
        message = f'invalid Backpack configuration{where}:\n' + '\n'.join(f'  - {line}' for line in lines)
    return BackpackConfigError(message, problems)


def _problems(exc: ValidationError, model: Type[BaseModel], also_valid: Sequence[str] = ()) -> List[Problem]:
    """(location, text) for every error of ``exc``, without any input value.

    ``also_valid`` are the names a loader accepts at the top level besides the model's fields
    (cryptofeed's ``key_id``, ``key_secret``, ...): an unknown option's message lists them too,
    and suggests the nearest valid name.
    """
    problems: List[Problem] = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = tuple(err['loc'])
        owner = _owner_model(model, loc)
        field = str(loc[-1]) if loc else ''
        info = owner.model_fields.get(field)
        description = info.description if info is not None else None
        kind, text = err['type'], err['msg']
        if kind == 'value_error':
            text = text.removeprefix('Value error, ')
        elif kind == 'missing':
            text = 'is required' + (f' ({description})' if description else '')
        elif kind == 'extra_forbidden':
            valid = list(owner.model_fields) + (list(also_valid) if len(loc) == 1 else [])
            close = difflib.get_close_matches(field, valid, n=1, cutoff=0.6)
            hint = f' (did you mean {close[0]}?)' if close else ''
            text = f'is not a known option{hint}; valid options here: {", ".join(valid)}'
        elif description:
            text = f'{text} ({description})'
        problems.append((loc, text))
    return problems


def _owner_model(model: Type[BaseModel], loc: Tuple[Any, ...]) -> Type[BaseModel]:
    """The model class declaring the last element of ``loc`` (walking nested model fields)."""
    owner = model
    for part in loc[:-1]:
        info = owner.model_fields.get(str(part))
        if info is None:
            break
        nested = [arg for arg in (info.annotation, *get_args(info.annotation))
                  if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if not nested:
            break
        owner = nested[0]
    return owner


class _ConfigModelMeta(type(BaseModel)):  # type: ignore[misc]
    """Turns the ValidationError of a direct ``Model(...)`` call into a ``BackpackConfigError``.

    Done in the metaclass rather than in ``__init__`` so that pydantic still validates nested
    models field by field (an ``__init__`` override would make it call ``__init__`` for them and
    report their errors against the whole, unmasked input).
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            raise invalid_config(_problems(exc, cls)) from None


class _FrozenModel(BaseModel, metaclass=_ConfigModelMeta):
    """Frozen, strict about unknown options, and never echoing input values in errors.

    Secrets are wrapped (``SecretStr``, ``ProxyURL``) and unknown options replaced by a
    placeholder before validation, so even ``ValidationError.errors()`` cannot carry them.
    """

    model_config = ConfigDict(frozen=True, extra='forbid', hide_input_in_errors=True)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any):  # type: ignore[override]
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise invalid_config(_problems(exc, cls)) from None

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any):  # type: ignore[override]
        """Parse the JSON first and validate in Python mode, where secrets are wrapped early."""
        try:
            data = json.loads(json_data)
        except ValueError as exc:
            position = getattr(exc, 'pos', None)
            raise BackpackConfigError(f'{cls.__name__}: not valid JSON (at position {position})') from None
        return cls.model_validate(data, *args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise BackpackConfigError(
            f'{type(self).__name__} is frozen: cannot set {name!r}; build a new one, e.g. with .replace()')

    def __delattr__(self, name: str) -> None:
        raise BackpackConfigError(f'{type(self).__name__} is frozen: cannot delete {name!r}')

    @model_validator(mode='before')
    @classmethod
    def _protect_inputs(cls, data: Any, info: ValidationInfo) -> Any:
        """Unknown options become a placeholder and secrets are wrapped, before anything can fail."""
        if not isinstance(data, Mapping):
            return data
        out = {key: (value if key in cls.model_fields else _REDACTED) for key, value in data.items()}
        if info.mode != 'json':  # JSON input holds plain strings only; see model_validate_json
            cls._wrap_secrets(out)
        return out

    @classmethod
    def _wrap_secrets(cls, out: Dict[str, Any]) -> None:
        """Wrap this model's secret inputs in ``out`` in place (none by default)."""

    def replace(self, **changes: Any):
        """A validated copy with ``changes`` applied (secrets carry over as they are)."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        current.update(changes)
        return type(self)(**current)


def _secret_input(value: Any) -> Any:
    """Wrap a raw secret before validation so that no error can carry it in clear."""
    if isinstance(value, str):
        return SecretStr(value)
    if isinstance(value, (bytes, bytearray)):
        # A raw seed (or seed + public key) given as bytes: base64 is the canonical text form.
        return SecretStr(base64.b64encode(bytes(value)).decode())
    if value is None or isinstance(value, SecretStr):
        return value
    # Anything else fails the string check; YAML turns an unquoted all-digit hex key into a number.
    return _REDACTED
