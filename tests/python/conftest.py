"""Shared fixtures: where the CLI and the sample models are.

ctest sets PYTHONPATH to the build's python/ folder (the package), and
MODELPRESS_CLI / MODELPRESS_SAMPLES to the CLI binary and sample_models/.
"""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def samples():
    return pathlib.Path(os.environ.get("MODELPRESS_SAMPLES", ROOT / "sample_models"))


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("MODELPRESS_CLI")
    if not path:
        pytest.skip("MODELPRESS_CLI is not set (ctest sets it)")

    def run(*args):
        r = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    return run
