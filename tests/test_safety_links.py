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
    assert r.returncode in (0, 1, 3), r.stderr
    assert state(shadow) == before
    assert out.is_file() and not out.is_symlink()
    # the output path itself is a link: the link is replaced by the report, its target untouched
    out.unlink()
    os.symlink(shadow, out)
    r = run_dockfix("scan", "--root", str(root), "--no-engine", "-o", str(out))
    assert r.returncode in (0, 1, 3), r.stderr
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


# ---------------------------------------------------------------------- fixes and links
#: Every place the fixes of a failing tree act on (owner, mode or content), as links to decoys.
LINKED = ["/etc/docker/daemon.json", "/lib/systemd/system/docker.service", "/etc/default/docker"]


def failing_tree(root: Path) -> Path:
    put(root, "/var/lib/", mode=0o755)
    put(root, "/etc/group", "root:x:0:\ndocker:x:999:\n")
    put(root, "/etc/docker/", mode=0o755)
    put(root, "/etc/docker/daemon.json", '{\n  "icc": true\n}\n', mode=0o666, owner=(1000, 1000))
    put(root, "/lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n", mode=0o666,
        owner=(1000, 1000))
    put(root, "/etc/default/docker", 'DOCKER_OPTS=""\n', mode=0o666, owner=(1000, 1000))
    return root


def apply_all(root: Path, *extra: str):
    r = run_dockfix("--apply", "--yes", "--root", str(root), "--no-engine", *extra)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.mark.parametrize("where", ["outside the root", "inside the root"])
def test_fixes_never_act_through_a_link(where: str, tmp_path: Path) -> None:
    """daemon.json, docker.service and /etc/default/docker are links to decoys that look like
    what the fixes want to change (owned 1000:1000, mode 0666, daemon.json content with icc on).
    Owner, mode and content fixes refuse them, naming the link; the decoys and links stay as they were."""
    root = failing_tree(tmp_path / "root")
    decoys = {}
    for i, p in enumerate(LINKED):
        real = root / p.lstrip("/")
        content = real.read_bytes()
        if where == "outside the root":
            d = tmp_path / "outside" / f"shadow-{i}"
            target = str(d)  # an absolute machine path: must not be reached at all
        else:
            d = root / "etc" / f"shadow-{i}"
            target = f"/etc/shadow-{i}"  # absolute inside the host: resolves to the decoy
        decoy(d, content)
        os.chown(d, 1000, 1000)
        os.chmod(d, 0o666)
        real.unlink()
        os.symlink(target, real)
        decoys[d] = state(d)
    before = manifest(root)
    r = apply_all(root)
    assert r.returncode in (0, 1), r.stderr
    for d, st in decoys.items():
        assert state(d) == st, f"{d} was changed through a link"
    for p in LINKED:
        assert (root / p.lstrip("/")).is_symlink(), f"{p} was replaced"
    if where == "inside the root":
        # the policy is stated where the admin sees it: the link is named and left for a human
        for p in ("/etc/docker/daemon.json", "/lib/systemd/system/docker.service"):
            assert f"{p} is a symbolic link" in r.stdout, r.stdout
    after = {k: v for k, v in manifest(root).items() if not k.startswith("var/lib/dockfix") and not k.startswith("etc/audit")}
    assert after == {k: v for k, v in before.items() if not k.startswith("etc/audit")}


def test_linked_etc_docker_directory(tmp_path: Path) -> None:
    """/etc/docker is a link to a directory elsewhere in the root (a common layout). The fix for
    /etc/docker's own owner and mode refuses the link; it never changes the directory behind it."""
    root = failing_tree(tmp_path / "root")
    real_dir = root / "srv/dockerconf"
    real_dir.mkdir(parents=True)
    os.chown(real_dir, 1000, 1000)
    os.chmod(real_dir, 0o777)
    os.rename(root / "etc/docker/daemon.json", real_dir / "daemon.json")
    (root / "etc/docker").rmdir()
    os.symlink("/srv/dockerconf", root / "etc/docker")
    dir_before = os.lstat(real_dir)
    r = apply_all(root)
    assert r.returncode in (0, 1), r.stderr
    st = os.lstat(real_dir)
    assert (st.st_uid, st.st_gid, st.st_mode) == (dir_before.st_uid, dir_before.st_gid, dir_before.st_mode)
    assert (root / "etc/docker").is_symlink()
    assert "/etc/docker is a symbolic link" in r.stdout


def test_swap_for_a_link_between_plan_and_apply_is_refused(tmp_path: Path) -> None:
    """A plan is reviewed; before it is applied, daemon.json (to be rewritten, chowned and
    chmodded) becomes a link to a decoy with the same content, owner and mode. The apply refuses
    (exit 3) naming the file, and changes nothing at all."""
    root = failing_tree(tmp_path / "root")
    plan = tmp_path / "plan.json"
    r = run_dockfix("plan", "-o", str(plan), "--root", str(root), "--no-engine")
    assert r.returncode == 0, r.stderr
    shadow = root / "etc/shadow"
    os.rename(root / "etc/docker/daemon.json", shadow)  # same inode, content, owner, mode
    os.symlink("/etc/shadow", root / "etc/docker/daemon.json")
    before = manifest(root)
    r = apply_all(root, "--plan", str(plan))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "/etc/docker/daemon.json" in r.stderr and "changed since the plan" in r.stderr
    assert manifest(root) == before


def test_swap_of_a_parent_directory_between_plan_and_apply_is_refused(tmp_path: Path) -> None:
    """/etc/docker is swapped for a link to a copy of itself: every file below looks the same,
    but the path now runs through a link. Refused, nothing changed."""
    root = failing_tree(tmp_path / "root")
    plan = tmp_path / "plan.json"
    assert run_dockfix("plan", "-o", str(plan), "--root", str(root), "--no-engine").returncode == 0
    os.rename(root / "etc/docker", root / "etc/docker.real")
    os.symlink("docker.real", root / "etc/docker")
    before = manifest(root)
    r = apply_all(root, "--plan", str(plan))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "/etc/docker" in r.stderr
    assert manifest(root) == before


def test_swap_during_the_apply_is_refused_and_rolled_back(tmp_path: Path) -> None:
    """The race inside an apply: after step 1, docker.service (not yet touched) becomes a link
    to a decoy. Its step re-checks what it is about to change, refuses, and the transaction is
    rolled back; the decoy is untouched."""
    from dockfix.host import Host
    from dockfix.scan import Context, scan
    from dockfix.workflow import apply_plan, plan_fixes

    root = failing_tree(tmp_path / "root")
    ctx = Context(Host(str(root), engine=False))
    plan = plan_fixes(ctx, scan(ctx).findings)
    targets = [c.target for c in plan.changes]
    assert "file:/lib/systemd/system/docker.service" in targets[1:]
    shadow = decoy(root / "etc/shadow", (root / "lib/systemd/system/docker.service").read_bytes())
    os.chown(shadow, 1000, 1000)
    os.chmod(shadow, 0o666)
    shadow_state = state(shadow)
    swapped = []

    def on_step(p) -> None:
        if not swapped:
            unit = root / "lib/systemd/system/docker.service"
            unit.unlink()
            os.symlink("/etc/shadow", unit)
            swapped.append(p.step)

    res = apply_plan(ctx.host, plan, on_step=on_step)
    assert res.rolled_back and res.error and "docker.service" in res.error, res
    assert state(shadow) == shadow_state
    assert (root / "lib/systemd/system/docker.service").is_symlink()
