"""A project command edits no tracked file and reaches no network, whatever the environment (#24, item 5).

Without ``KEDRO_DISABLE_TELEMETRY`` / ``DO_NOT_TRACK``, kedro-telemetry asked Heap's servers and wrote
``[tool.kedro_telemetry] project_id = …`` into ``pyproject.toml``. The project ships the opt-out the
plugin documents, a ``.telemetry`` file with ``consent: false`` at its root. Here ``kedro registry
list`` runs in a copy of the project with a clean environment, a fresh HOME and every non-local
connection refused and logged (a ``sitecustomize`` on PYTHONPATH).
"""

from __future__ import annotations

import os
import shutil
import sys
import subprocess
from pathlib import Path

import yaml

from tests.conftest import PROJECT_ROOT

BLOCK_NETWORK = '''
import os, socket
LOG = os.environ["NETWORK_ATTEMPTS"]
LOCAL = (None, "", "127.0.0.1", "::1", "localhost")

def record(what):
    with open(LOG, "a") as f:
        f.write(what + "\\n")

def connect(self, address, _real=socket.socket.connect):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL:
        record(f"connect {address!r}")
        raise OSError("network refused by the test")
    return _real(self, address)

def getaddrinfo(host, *args, _real=socket.getaddrinfo, **kwargs):
    if host not in LOCAL:
        record(f"getaddrinfo {host!r}")
        raise socket.gaierror("network refused by the test")
    return _real(host, *args, **kwargs)

socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
'''
TELEMETRY_VARIABLES = ("KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY")


def test_the_shipped_telemetry_file_says_no():
    assert yaml.safe_load((PROJECT_ROOT / ".telemetry").read_text()) == {"consent": False}
    tracked = subprocess.run(["git", "ls-files", ".telemetry"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert tracked.stdout.strip() in (".telemetry", "")  # tracked in the repository (empty: not a git checkout)


def test_kedro_without_telemetry_variables_edits_nothing_and_reaches_no_network(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()  # the package itself is installed
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_NETWORK)
    attempts, home = tmp_path / "attempts.log", tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_VARIABLES}
    env |= {"HOME": str(home), "PYTHONPATH": str(site), "NETWORK_ATTEMPTS": str(attempts)}
    before = (project / "pyproject.toml").read_bytes()
    kedro = Path(sys.executable).with_name("kedro")
    done = subprocess.run([str(kedro), "registry", "list"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "correction_training" in done.stdout  # the command really ran
    assert (project / "pyproject.toml").read_bytes() == before, "a kedro command edited pyproject.toml"
    assert not attempts.exists(), f"network reached for: {attempts.read_text()}"
    assert not (home / ".config" / "kedro").exists()  # no telemetry identity made either


def test_project_settings_turn_mlflow_usage_telemetry_off():
    """MLflow 3 asks config.mlflow-telemetry.io at its first tracked call (seen in a ``kedro run --env
    test`` with only KEDRO_DISABLE_TELEMETRY set); the project settings, loaded by every project
    command before any hook calls MLflow, turn it off unless the environment says otherwise."""
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_VARIABLES}
    code = ("import precipdiff.settings; from mlflow.environment_variables import MLFLOW_DISABLE_TELEMETRY; "
            "print(MLFLOW_DISABLE_TELEMETRY.get())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-1] == "True", done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-c", code], env={**env, "MLFLOW_DISABLE_TELEMETRY": "false"},
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-1] == "False"  # an explicit choice of the user is kept
