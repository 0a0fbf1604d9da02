"""The Host never leads out of --root: links in parent folders are resolved inside the root."""

import os

from dockfix.host import Host
from helpers import put


def test_absolute_parent_link_stays_inside_the_root(tmp_path):
    put(tmp_path, "run/", mode=0o755)
    put(tmp_path, "run/marker", "inside\n", mode=0o640, owner=(1000, 1000))
    os.makedirs(tmp_path / "var")
    os.symlink("/run", tmp_path / "var/run")  # as on Debian: an absolute link
    host = Host(str(tmp_path), engine=False)
    st = host.lstat("/var/run/marker")
    assert st is not None and (st.st_uid, st.st_gid) == (1000, 1000)
    assert host.read_text("/var/run/marker") == "inside\n"
    # this machine's /run has no such file: had the link been followed outside, lstat would say so
    assert host.lstat("/var/run/no-such-file-here") is None
    assert not os.path.exists("/run/marker") or host.lstat("/var/run/marker").st_ino != os.lstat("/run/marker").st_ino


def test_parent_link_escaping_with_dotdot_is_clamped(tmp_path):
    put(tmp_path, "etc/docker/", mode=0o755)
    os.symlink("../../../../../../etc", tmp_path / "etc/docker/up")
    host = Host(str(tmp_path), engine=False)
    # ../ past the top stays at the root's /, so this is the tree's /etc/passwd, which does not exist
    assert host.lstat("/etc/docker/up/passwd") is None
    assert host.read_bytes("/etc/docker/up/passwd") is None
