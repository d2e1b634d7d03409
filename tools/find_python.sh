#!/usr/bin/env bash
# Usage: tools/find_python.sh NAME
# Prints the path of the interpreter NAME (a command such as python3.12, or a path) names, or
# nothing and exit 1 when there is none. A pyenv shim of a version that pyenv has installed but
# not selected does not run; then pyenv's newest install of that version (3.12 -> 3.12.*) is used.
set -u
name=${1:?usage: tools/find_python.sh NAME}
if exe=$("$name" -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -n "$exe" ]; then
    echo "$exe"
    exit 0
fi
version=${name##*/}
version=${version#python}
case $version in
    [0-9].[0-9]*) ;;
    *) exit 1 ;;
esac
root=${PYENV_ROOT:-$HOME/.pyenv}
for exe in $(ls -d "$root"/versions/"$version".*/bin/python 2>/dev/null | sort -V -r); do
    if "$exe" -c '' 2>/dev/null; then
        echo "$exe"
        exit 0
    fi
done
exit 1
