"""Debian binaries the tests run for real; missing ones fail in CI and skip elsewhere."""

import os
import shutil

import pytest


def require(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        message = f"{name} is not installed (apt-get install {package}, or `make deps`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
