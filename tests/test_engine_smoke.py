"""The private engine works and dockfix scans it through --docker-host."""

from helpers import BUSYBOX_IMAGE, by_id, scan_json


def test_scan_reads_the_private_engine(engine, tmp_path):
    doc = scan_json(tmp_path, "--docker-host", engine.url, "--only", "2.6,2.14")  # 2.14: remote logging in v1.8.0
    assert doc["host"]["engine"]["server_version"].startswith(engine.version + ".")
    aufs = by_id(doc, "2.6")[0]
    driver = "overlayfs (docker info; a snapshotter" if engine.version == "28" else "overlay2 (docker info)"
    assert aufs["status"] == "pass" and driver in aufs["evidence"], aufs
    # the private daemon was started with --iptables=false: its own command line is found and read
    doc = scan_json(tmp_path, "--docker-host", engine.url, "--only", "2.4")
    f = by_id(doc, "2.4")[0]
    assert f["status"] == "fail", f
    assert "command line" in f["evidence"]


def test_busybox_image_runs(engine):
    out = engine.cli("run", "--rm", "--network", "none", BUSYBOX_IMAGE, "echo", "hello").stdout
    assert out.strip() == "hello"
