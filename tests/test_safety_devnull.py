"""Why /dev/null turned into a regular file (issue 15), shown on the real path /dev/null.

The root cause: writing an output file atomically means writing a temporary file in the target's
folder and renaming it over the target. Run as root with ``-o /dev/null``, that rename replaces the
device node /dev/null with a regular file holding the report (dockfix's write_output did exactly
this before commit 9aaacc5). Every process on the machine that then writes to /dev/null appends to
that file, and every one that reads it gets the report.

Each test runs its commands in a private mount namespace (``unshare --mount --propagation
private``) with a fresh tmpfs over /dev holding only a ``null`` character device 1,3: the
commands see "/dev/null", the machine's /dev is never touched (tests/conftest.py checks the real
one after every test anyway).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, put

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare(1) for a private mount namespace")

#: Runs in the namespace: puts a tmpfs over /dev with a null device, runs each case (a command
#: line), and reports what /dev/null (and /dev) looked like after it. The device is put back
#: between cases.
DRIVER = r"""
import json, os, stat, subprocess, sys
outer_ns, cases = sys.argv[1], json.loads(sys.argv[2])
if os.readlink("/proc/self/ns/mnt") == outer_ns:
    sys.exit("not in a private mount namespace: refusing to touch /dev")
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=755", "dockfix-test-dev", "/dev"], check=True)

def make_null():
    os.mknod("/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod("/dev/null", 0o666)

def null_state():
    st = os.lstat("/dev/null")
    if stat.S_ISCHR(st.st_mode):
        return {"kind": "char", "rdev": [os.major(st.st_rdev), os.minor(st.st_rdev)]}
    with open("/dev/null", "rb") as f:
        return {"kind": "regular" if stat.S_ISREG(st.st_mode) else oct(stat.S_IFMT(st.st_mode)),
                "head": f.read(200).decode("utf-8", "replace")}

make_null()
out = {}
for name, argv in cases.items():
    r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    out[name] = {"rc": r.returncode, "stderr": r.stderr[-2000:], "null": null_state(),
                 "dev": sorted(os.listdir("/dev"))}
    if out[name]["null"]["kind"] != "char":
        os.unlink("/dev/null")
        make_null()
print(json.dumps(out))
"""

#: write_output as it was before commit 9aaacc5 (`git show 9aaacc5^:dockfix/cli/common.py`):
#: a fresh temporary file in the target's folder, renamed over the target, whatever it is.
NAIVE_WRITER = r"""
import os, sys, tempfile
path, text, mode = sys.argv[1], sys.argv[2], 0o666
folder = os.path.dirname(os.path.abspath(path))
fd, tmp = tempfile.mkstemp(prefix=".dockfix-", suffix=".tmp", dir=folder)
umask = os.umask(0)
os.umask(umask)
os.fchmod(fd, mode & ~umask)
with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
    f.write(text)
os.replace(tmp, path)
"""

#: The fix core's writer (what a content fix uses), pointed at /dev/null on the host root /.
FIX_WRITER = r"""
import sys
from dockfix.fsops import FsError, write_file
from dockfix.host import Host
try:
    write_file(Host(root="/", engine=False), "/dev/null", b"fixed\\n", 0, 0, 0o644)
except FsError as e:
    sys.exit(f"dockfix: {e}")
"""

WALKTHROUGH = r"""
import sys, types
from dockfix.demo.walkthrough import Walkthrough, WalkthroughError
wt = Walkthrough(types.SimpleNamespace(folder="/tmp/demo"), sys.argv[1], restart=True)
try:
    wt.goto(1)
except WalkthroughError as e:
    sys.exit(f"dockfix: {e}")
"""


def in_private_dev(cases: dict[str, list[str]], tmp_path: Path) -> dict:
    """Run each case (an argv) with "/dev/null" a device on a tmpfs of its own; what happened."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    env.pop("DOCKER_HOST", None)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-c", DRIVER,
                        os.readlink("/proc/self/ns/mnt"), json.dumps(cases)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def dockfix(*args: str) -> list[str]:
    return [sys.executable, "-m", "dockfix", *args]


NULL = {"kind": "char", "rdev": [1, 3]}


def test_root_cause_rename_over_dev_null_makes_it_a_regular_file(tmp_path: Path) -> None:
    """The mechanism, on the real path: the pre-9aaacc5 writer run as root with /dev/null as its
    output leaves a regular file holding the report where the device was."""
    got = in_private_dev({"naive -o /dev/null": [sys.executable, "-c", NAIVE_WRITER, "/dev/null",
                                                 "dockfix report: 3 checks failed\n"]}, tmp_path)
    case = got["naive -o /dev/null"]
    assert case["rc"] == 0, case["stderr"]
    assert case["null"] == {"kind": "regular", "head": "dockfix report: 3 checks failed\n"}


def test_no_dockfix_writer_replaces_dev_null(tmp_path: Path) -> None:
    """Every dockfix command that writes a file the user names, pointed at /dev/null (or at a new
    name in /dev), and the fix core's own writer: /dev/null stays the character device 1,3 and /dev
    gains nothing."""
    root = tmp_path / "host"
    put(root, "etc/docker/daemon.json", '{"icc": true}\n', mode=0o666)
    host = ["--root", str(root), "--no-engine"]
    scan_json = tmp_path / "scan.json"
    r = subprocess.run(dockfix("scan", *host, "--format", "json", "-o", str(scan_json)), capture_output=True,
                       text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert r.returncode in (0, 1) and scan_json.exists(), r.stderr
    waive = ["waive", "2.1", "--reason", "test", "--until", "2099-01-01"]
    cases = {
        "scan -o /dev/null": dockfix("scan", *host, "-o", "/dev/null"),
        "scan --format json -o /dev/null": dockfix("scan", *host, "--format", "json", "-o", "/dev/null"),
        "plan -o /dev/null": dockfix("plan", *host, "-o", "/dev/null"),
        "report -o /dev/null": dockfix("report", "-o", "/dev/null", str(scan_json)),
        "waive --file /dev/null": dockfix(*waive, "--file", "/dev/null"),
        "walkthrough progress /dev/null": [sys.executable, "-c", WALKTHROUGH, "/dev/null"],
        "fix writer on /dev/null": [sys.executable, "-c", FIX_WRITER],
        # a new name in /dev is never created either
        "scan -o /dev/report.txt": dockfix("scan", *host, "-o", "/dev/report.txt"),
        "waive --file /dev/waivers.yaml": dockfix(*waive, "--file", "/dev/waivers.yaml"),
        "walkthrough progress /dev/progress.json": [sys.executable, "-c", WALKTHROUGH, "/dev/progress.json"],
    }
    got = in_private_dev(cases, tmp_path)
    for name, case in got.items():
        assert case["null"] == NULL, f"{name}: /dev/null is now {case['null']} ({case['stderr']})"
        assert case["dev"] == ["null"], f"{name}: /dev now holds {case['dev']}"
    for name in ("scan -o /dev/null", "scan --format json -o /dev/null", "report -o /dev/null"):
        assert got[name]["rc"] in (0, 1), got[name]["stderr"]  # written "to /dev/null": discarded
    assert got["plan -o /dev/null"]["rc"] == 0, got["plan -o /dev/null"]["stderr"]
    assert got["walkthrough progress /dev/null"]["rc"] == 0, got["walkthrough progress /dev/null"]["stderr"]
    # refused in one line naming the file
    for name, path in (("waive --file /dev/null", "/dev/null"), ("fix writer on /dev/null", "/dev/null"),
                       ("scan -o /dev/report.txt", "/dev/report.txt"),
                       ("waive --file /dev/waivers.yaml", "/dev/waivers.yaml"),
                       ("walkthrough progress /dev/progress.json", "/dev/progress.json")):
        err = got[name]["stderr"].strip()
        assert got[name]["rc"] != 0 and len(err.splitlines()) == 1 and path in err, f"{name}: {err}"


@pytest.mark.parametrize("cli", [
    "/usr/bin/docker",
    "/var/cache/dockfix-test/newer/root/docker-cli/usr/bin/docker",
])
def test_docker_cli_refuses_to_replace_dev_null(cli: str, tmp_path: Path) -> None:
    """The other candidate seen around private engines: `docker save/export/cp -o /dev/null` (the
    same rename, docker/cli#1514). Debian 12's CLI 20.10 and the Docker 28 CLI both refuse a device
    before contacting any engine."""
    if not os.access(cli, os.X_OK):
        pytest.skip(f"{cli} is not there (scripts/newer-debs unpacks the Docker 28 CLI)")
    nowhere = ["-H", f"unix://{tmp_path}/no-engine.sock"]
    got = in_private_dev({
        "save": [cli, *nowhere, "save", "-o", "/dev/null", "busybox"],
        "export": [cli, *nowhere, "export", "-o", "/dev/null", "c1"],
        "cp": [cli, *nowhere, "cp", "c1:/etc/hostname", "/dev/null"],
    }, tmp_path)
    for name, case in got.items():
        assert case["null"] == NULL, f"docker {name}: /dev/null is now {case['null']}"
        assert case["rc"] != 0 and ("device" in case["stderr"]), f"docker {name}: {case['stderr']}"


def test_output_to_dev_stdout_is_written_there_not_replaced(tmp_path: Path) -> None:
    """`-o /dev/stdout` (a link in /dev to our own output) prints the report; the link stays."""
    from helpers import run_dockfix

    root = tmp_path / "host"
    put(root, "etc/docker/daemon.json", '{"icc": true}\n')
    before = os.readlink("/dev/stdout")
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "--format", "json", "-o", "/dev/stdout")
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(r.stdout)["dockfix"]
    assert os.readlink("/dev/stdout") == before
