"""The README's first command on a stock Debian 12: as root, with the system Python (externally
managed: `pip install` outside a venv is refused), into a scratch root-owned prefix; then `dockfix`
is found where root and sudo look for it (sudo's secure_path, with a clean environment)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess

import pytest

from helpers import REPO

SYSTEM_PYTHON = "/usr/bin/python3"
#: Debian's sudo: `Defaults secure_path=...` in /etc/sudoers
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="the install is for root"),
              pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="no system Python at /usr/bin/python3")]


def readme_first_command() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)\n```", text, re.S).group(1)
    return block.strip().splitlines()[0]


def test_readme_first_command_installs_for_root_and_sudo(tmp_path):
    first = readme_first_command()
    assert first == "./scripts/install && dockfix demo", first
    install = first.split(" && ")[0]
    # the system Python refuses a plain pip install (the reason for the venv)
    if os.path.exists("/usr/lib/python3.11/EXTERNALLY-MANAGED"):
        r = subprocess.run([SYSTEM_PYTHON, "-m", "pip", "install", "--dry-run", "dockfix"], capture_output=True, text=True)
        assert r.returncode != 0 and "externally-managed-environment" in (r.stdout + r.stderr)
    os.chmod(tmp_path, 0o755)
    prefix, bindir = tmp_path / "opt" / "dockfix", tmp_path / "usr" / "local" / "bin"
    env = {"PATH": SECURE_PATH, "HOME": str(tmp_path / "home"), "DOCKFIX_PREFIX": str(prefix),
           "DOCKFIX_BINDIR": str(bindir), "PYTHON": SYSTEM_PYTHON}
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "PIP_INDEX_URL"):
        if k in os.environ:
            env[k] = os.environ[k]
    r = subprocess.run(["sh", "-c", install], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    link = bindir / "dockfix"
    assert os.readlink(link) == str(prefix / "bin" / "dockfix")
    assert (prefix / "bin" / "python").resolve().as_posix().startswith("/usr/bin/python3")
    # root-owned, writable by no one else
    for dirpath, dirnames, filenames in os.walk(prefix):
        for name in dirnames + filenames + ["."]:
            st = os.lstat(os.path.join(dirpath, name))
            assert st.st_uid == 0, os.path.join(dirpath, name)
            assert stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o022, os.path.join(dirpath, name)
    # found with sudo's secure_path in a clean environment, as `sudo dockfix` would run it
    path = SECURE_PATH.replace("/usr/local/bin", str(bindir))
    r = subprocess.run(["env", "-i", f"PATH={path}", "dockfix", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("dockfix "), r.stderr
    assert shutil.which("dockfix", path=path) == str(link)
    if shutil.which("sudo"):
        r = subprocess.run(["sudo", "-n", "env", f"PATH={path}", "dockfix", "--version"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.startswith("dockfix "), r.stderr
    # the second half of the first command: without a terminal it says so at once (exit 2)
    r = subprocess.run(["env", "-i", f"PATH={path}", "dockfix", "demo"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2 and "no terminal" in r.stderr
    # refuses a prefix below a folder others can write to
    bad = tmp_path / "shared"
    bad.mkdir(mode=0o777)
    os.chmod(bad, 0o777)
    r = subprocess.run(["sh", "-c", install], cwd=REPO, env=dict(env, DOCKFIX_PREFIX=str(bad / "dockfix")),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "writable by other users" in r.stderr and not (bad / "dockfix").exists()
