"""Test hosts for the fleet test: containers made from a Debian rootfs with python3.

The rootfs is built once with debootstrap from Debian's packages (the mirror apt uses here) and
kept as a tar under /var/cache/dockfix-test/, keyed by a hash of the recipe, so later test runs
only `docker import` it. The containers run with no network; each is a "host" whose own / holds
a different set of faults, and dockfix inside runs as root with --no-engine.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CACHE = Path(os.environ.get("DOCKFIX_TEST_CACHE", "/var/cache/dockfix-test"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Trimmed after debootstrap: nothing here is needed to run python3 and pip.
TRIM = ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt",
        "var/lib/apt/lists", "var/cache/debconf/templates.dat-old", "var/log"]


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 .sources or sources.list), else the default."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            suites = fields.get("Suites", "").split()
            if "deb" in fields.get("Types", "").split() and "bookworm" in suites and fields.get("Enabled", "yes") != "no":
                uri = fields.get("URIs", "").split()
                if uri:
                    return uri[0].rstrip("/")
    try:
        for line in Path("/etc/apt/sources.list").read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line + " ")
            if m:
                return m.group(1).rstrip("/")
    except OSError:
        pass
    return DEFAULT_MIRROR


def recipe() -> dict:
    return {
        "suite": "bookworm",
        "variant": "minbase",
        "include": ["python3", "python3-venv"],
        "mirror": apt_mirror(),
        "trim": TRIM,
        "version": 1,
    }


def recipe_key(r: dict) -> str:
    return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:12]


def rootfs_tar(log=print) -> tuple[Path, float | None]:
    """Path of the cached rootfs tar, built now if missing; and the build time in seconds (None if cached)."""
    r = recipe()
    key = recipe_key(r)
    CACHE.mkdir(parents=True, exist_ok=True)
    tar = CACHE / f"debian-{r['suite']}-python3-{key}.tar"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions at once build it once
        if tar.exists():
            return tar, None
        if not shutil.which("debootstrap"):
            raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=CACHE, prefix="build-") as tmp:
            root = Path(tmp) / "rootfs"
            cmd = ["debootstrap", f"--variant={r['variant']}", f"--include={','.join(r['include'])}",
                   r["suite"], str(root), r["mirror"]]
            log(f"building the fleet test rootfs (once; cached as {tar}): {' '.join(cmd)}")
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
            if p.returncode != 0:
                raise RuntimeError(f"debootstrap failed ({p.returncode}): {(p.stdout + p.stderr)[-3000:]}")
            for rel in r["trim"]:
                target = root / rel
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                    target.mkdir()
                elif target.exists():
                    target.unlink()
            part = Path(tmp) / "rootfs.tar"
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(part), "."], check=True)
            os.replace(part, tar)
        took = time.monotonic() - started
        log(f"fleet test rootfs built in {took:.0f} s")
        (CACHE / f"{tar.name}.build-seconds").write_text(f"{took:.1f}\n")
        return tar, took


def import_image(engine, tar: Path) -> str:
    """`docker import` the rootfs into the private engine (once per engine)."""
    image = f"dockfix-test/debian-python3:{tar.stem.rsplit('-', 1)[-1]}"
    if engine.cli("image", "inspect", image, check=False).returncode != 0:
        engine.cli("import", str(tar), image, timeout=600)
    return image


def _pip(*args: str, cwd: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"],
                       capture_output=True, text=True, cwd=cwd, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"pip {args[0]} failed: {r.stderr[-3000:]}")


def wheelhouse(dest: Path) -> Path:
    """A folder of wheels for hosts with no package index: dockfix built from this checkout, and
    its dependencies (downloaded once, cached under CACHE keyed by pyproject's dependency list)."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    key = hashlib.sha256(json.dumps([sys.version_info[:2], sorted(deps)]).encode()).hexdigest()[:12]
    cached = CACHE / f"wheels-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.is_dir():
            with tempfile.TemporaryDirectory(dir=CACHE, prefix="wheels-") as tmp:
                _pip("wheel", "-w", tmp, *deps, cwd=Path(tmp))
                os.rename(tmp, cached)
                os.mkdir(tmp)  # for TemporaryDirectory's cleanup
    shutil.copytree(cached, dest)
    with tempfile.TemporaryDirectory(prefix="dfx-build-") as build:
        # the checkout is copied so that setuptools' build/ and egg-info stay out of it
        src = Path(build) / "src"
        shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "test-artifacts", "build", "*.egg-info",
                                                                 "__pycache__", ".pytest_cache"))
        _pip("wheel", "--no-deps", "-w", str(dest), str(src), cwd=Path(build))
    return dest
