"""Links and races: dockfix never acts through a symbolic link it did not expect.

Decoys stand in for /etc/shadow: files outside the host root (and inside it) that a link points
at. After every operation the decoys must be byte-for-byte, owner and mode, what they were.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import manifest, put, run_dockfix


def decoy(path: Path, content: bytes = b"root:$6$decoy-shadow-hash:19000:0:99999:7:::\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chown(path, 0, 42)
    os.chmod(path, 0o640)
    return path


def state(path: Path) -> tuple:
    st = os.lstat(path)
    return (path.read_bytes(), st.st_uid, st.st_gid, st.st_mode)


# ---------------------------------------------------------------------- report files (-o)
def test_report_output_never_follows_planted_links(tmp_path: Path) -> None:
    """`dockfix scan -o FILE` as root: a link planted at the output path, or at the name a naive
    tool would use for its temporary file, must not make dockfix write through it."""
    root = tmp_path / "root"
    put(root, "/etc/docker/daemon.json", '{"icc": false}\n')
    shadow = decoy(tmp_path / "shadow")
    out = tmp_path / "out" / "report.json"
    out.parent.mkdir()
    os.symlink(shadow, str(out) + ".dockfix-tmp")
    os.symlink(shadow, str(out) + ".tmp")
    before = state(shadow)
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "--format", "json", "-o", str(out))
    assert r.returncode in (0, 1), r.stderr
    assert state(shadow) == before
    assert out.is_file() and not out.is_symlink()
    # the output path itself is a link: the link is replaced by the report, its target untouched
    out.unlink()
    os.symlink(shadow, out)
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "-o", str(out))
    assert r.returncode in (0, 1), r.stderr
    assert state(shadow) == before
    assert not out.is_symlink() and "dockfix" in out.read_text()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".dockfix-")], "temporary file left behind"


# ---------------------------------------------------------------------- reading
def test_scan_reads_links_inside_the_root_only(tmp_path: Path) -> None:
    """An absolute link target is taken inside the root: daemon.json -> /etc/shadow reads
    <root>/etc/shadow, never the machine's (a decoy outside the root stands in for it)."""
    root = tmp_path / "root"
    put(root, "/etc/docker/", mode=0o755)
    put(root, "/etc/inside.json", '{"icc": false}\n')
    outside = tmp_path / "outside.json"
    outside.write_text('{"icc": true}\n')
    os.symlink(str(outside), root / "etc/docker/daemon.json")  # absolute: resolved inside the root
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "--format", "json", "--only", "icc")
    import json

    doc = json.loads(r.stdout)
    (icc,) = doc["findings"]
    # <root>/<tmp>/outside.json does not exist: daemon.json is absent inside the root
    assert "not set" in icc["evidence"], icc
    os.unlink(root / "etc/docker/daemon.json")
    os.symlink("../../../../../../../etc/inside.json", root / "etc/docker/daemon.json")  # '..' stops at the root
    doc = json.loads(run_dockfix("scan", "--root", str(root), "--no-engine", "--format", "json", "--only", "icc").stdout)
    assert doc["findings"][0]["status"] == "pass", doc["findings"][0]


def test_read_refuses_a_link_swapped_in_after_resolving(tmp_path: Path) -> None:
    """The race: Host.resolve() looked at the path, then a directory on the way is replaced by a
    link to the outside before the open. The open walks the resolved path with O_NOFOLLOW, so
    it refuses instead of reading the outside file."""
    from dockfix.host import Host
    from dockfix.model import CheckError

    root = tmp_path / "root"
    put(root, "/etc/docker/daemon.json", '{"icc": false}\n')
    outside = tmp_path / "evil"
    outside.mkdir()
    (outside / "daemon.json").write_text('{"secret": "outside"}\n')
    host = Host(root=str(root), engine=False)
    real_resolve = host.resolve

    def racing_resolve(path: str) -> str:
        out = real_resolve(path)
        # swap /etc/docker for a link to the outside, between the look and the open
        if (root / "etc/docker").is_dir() and not (root / "etc/docker").is_symlink():
            os.rename(root / "etc/docker", root / "etc/docker.old")
            os.symlink(str(outside), root / "etc/docker")
        return out

    host.resolve = racing_resolve  # type: ignore[method-assign]
    with pytest.raises(CheckError, match="symbolic link appeared"):
        host.read_text("/etc/docker/daemon.json")


def test_read_refuses_a_file_swapped_after_the_look(tmp_path: Path, monkeypatch) -> None:
    """Between the lstat and the open the regular file becomes a FIFO: refused, not opened."""
    import dockfix.host as host_mod
    from dockfix.host import Host
    from dockfix.model import CheckError

    root = tmp_path / "root"
    put(root, "/etc/docker/daemon.json", '{"icc": false}\n')
    host = Host(root=str(root), engine=False)
    real_open = os.open
    target = root / "etc/docker/daemon.json"

    def swapping_open(name, flags, *a, **kw):
        if name == "daemon.json" and not (flags & os.O_PATH):
            os.rename(target, str(target) + ".old")  # kept, so its inode number is not reused
            target.write_text('{"icc": true}\n')  # a new inode with the same name
        return real_open(name, flags, *a, **kw)

    monkeypatch.setattr(host_mod.os, "open", swapping_open)
    with pytest.raises(CheckError, match="changed while being read"):
        host.read_text("/etc/docker/daemon.json")
