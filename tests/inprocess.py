"""Run a command-line ``main`` inside the test process, the way a subprocess would see it.

Starting Python and importing the package costs about half a second of CPU per process; tests
whose point is the CLI's behaviour, not the process boundary, call the entry point's ``main(argv)``
here instead and get the same ``subprocess.CompletedProcess`` (exit status, stdout, stderr) back.
The environment and working directory are swapped for the call and restored afterwards; log
records of WARNING and above land on the captured stderr, as Python's last-resort handler puts
them there in a process that configures no logging. A few tests per CLI still start real processes.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union


def run_main(main: Callable[..., Optional[int]], argv: Sequence[str], *, env: Optional[Mapping[str, str]] = None,
             cwd: Union[str, Path, None] = None, streams: bool = False) -> subprocess.CompletedProcess:
    """Call ``main(list(argv))`` with stdout/stderr captured; ``env`` replaces ``os.environ`` for the call.

    ``streams=True`` also passes the captured streams as ``out=`` and ``err=`` (for a ``main`` that takes
    them). An exit through ``SystemExit`` (argparse, ``--help``) gives its code, as the process would.
    """
    out, err = io.StringIO(), io.StringIO()
    kwargs: Dict[str, Any] = {'out': out, 'err': err} if streams else {}
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv), **kwargs)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) or exc.code is None else 1
                if not isinstance(exc.code, int) and exc.code is not None:
                    print(exc.code, file=err)
    finally:
        root.removeHandler(handler)
        os.chdir(saved_cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(saved_env)
    return subprocess.CompletedProcess(['<in-process>', *argv], code or 0, out.getvalue(), err.getvalue())
