"""dockerd's effective configuration, decided by real programs where they can decide.

* systemd's own unit search path (``systemd-analyze unit-paths``) is the one dockfix walks;
* a daemon.json fix is never planned for a key a flag sets (manual, naming the unit line or the
  options file), and every daemon.json fix of every case tree whose unit passes flags leaves a
  configuration a real dockerd (20.10, private) starts with, flags and file together;
* where a dockerd with ``--validate`` is at hand (Docker 28 from scripts/newer-debs), it has the
  last word on the staged daemon.json;
* a running private dockerd, started with the flag spellings in question, and the same
  configuration as an offline tree (unit + drop-in + EnvironmentFile) get the same verdicts;
* no check of sections 1-3 passes on a default when dockerd's command line cannot be read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import put, put_units
from test_cases import EFFECTIVE, SECTION_2, build

from dockfix.demo import private_engine as _core
from dockfix.host import SYSTEMD_DIRS, Host
from dockfix.model import REGISTRY, Status
from dockfix.scan import Context, run_check, scan
from dockfix.sources.daemon_config import FLAG_KEYS, Setting
from dockfix.workflow import apply_plan, plan_fixes

NEWER = Path(os.environ.get("DOCKFIX_NEWER_CACHE", "/var/cache/dockfix-test/newer")) / "root"
DOCKERD_28 = NEWER / "docker.io/usr/sbin/dockerd"


# ---------------------------------------------------------------------- systemd decides
@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_unit_search_path_is_systemds():
    r = subprocess.run(["systemd-analyze", "unit-paths"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert tuple(r.stdout.split()) == SYSTEMD_DIRS


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_refuses_the_units_dockfix_calls_unstartable(tmp_path):
    """systemd-analyze verify --root=TREE decides whether the ExecStart= lines (after drop-ins and
    resets) leave one command: where it refuses, dockfix's verdict is manual for the same reason."""
    checked = refusals = 0
    for case in EFFECTIVE:
        if not any(p.endswith("docker.service") or ".service.d/" in p for p in case.tree):
            continue
        root = tmp_path / case.id.replace("/", "_")
        build(root, case.tree)
        if "merged-usr" in case.id:
            continue  # a relative /lib link: systemd-analyze --root resolves it the same way, but needs /usr/lib
        r = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "--man=no", "docker.service"],
                           capture_output=True, text=True, timeout=60)
        refused = "more than one ExecStart" in r.stdout + r.stderr
        try:
            unknown = Context(Host(str(root), engine=False)).daemon_cmdline().unknown or ""
        except Exception as e:  # noqa: BLE001 - an unreadable unit: systemd does not refuse for that reason
            unknown = str(e)
        assert refused == ("ExecStart= lines" in unknown), (case.id, r.stdout + r.stderr, unknown)
        checked += 1
        refusals += refused
    assert checked >= 20 and refusals >= 1, (checked, refusals)


# ---------------------------------------------------------------------- fixes and flags
def _plan(root: Path, only: list[str]):
    ctx = Context(Host(str(root), engine=False))
    findings = scan(ctx, only=only).findings
    return ctx, findings, plan_fixes(ctx, findings, include_disruptive=True)


@pytest.mark.parametrize("label,service,files,only,phrase", [
    ("unit-flag", "[Service]\nExecStart=/usr/sbin/dockerd -H fd:// --icc\n", {}, "icc",
     "/lib/systemd/system/docker.service:2"),
    ("docker-opts", None, {"etc/default/docker": 'DOCKER_OPTS="--log-level=debug"\n'}, "log-level",
     "via $DOCKER_OPTS from /etc/default/docker:1"),
    ("dropin", None, {"etc/systemd/system/docker.service.d/x.conf": "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// --experimental\n"},
     "experimental", "/etc/systemd/system/docker.service.d/x.conf:3"),
    ("unknown", "", {}, "icc", "dockerd's command line is unknown"),
])
def test_no_daemon_json_fix_for_a_key_a_flag_sets(tmp_path, label, service, files, only, phrase):
    if service is None:
        put_units(tmp_path)
    elif service:
        put_units(tmp_path, service=service)
    put(tmp_path, "etc/docker/daemon.json", '{"icc": true}\n' if label == "unknown" else "{}\n")
    for rel, text in files.items():
        put(tmp_path, rel, text)
    before = (tmp_path / "etc/docker/daemon.json").read_bytes()
    ctx, findings, plan = _plan(tmp_path, [only])
    assert [str(f.status) for f in findings] == ["fail"], [f.evidence for f in findings]
    assert not plan.applicable(), plan.diff()
    assert any(phrase in n for it in plan.items for n in it.notes), [it.notes for it in plan.items]
    assert (tmp_path / "etc/docker/daemon.json").read_bytes() == before


@pytest.mark.skipif(not DOCKERD_28.exists(), reason="Docker 28's dockerd is not unpacked (scripts/newer-debs docker.io)")
@pytest.mark.parametrize("text,ok", [
    ('{"icc": true}\n', True),
    ('{"icc": true, "max-concurrent-downloads": "3"}\n', False),  # a type dockfix does not know; dockerd does
    ('{"icc": true, "no-such-option": 1}\n', False),
])
def test_dockerd_validate_decides_on_the_staged_file(tmp_path, monkeypatch, text, ok):
    monkeypatch.setenv("DOCKFIX_DOCKERD", str(DOCKERD_28))
    put_units(tmp_path)
    put(tmp_path, "etc/docker/daemon.json", text)
    ctx, findings, plan = _plan(tmp_path, ["icc"])
    assert bool(plan.applicable()) is ok, plan.diff()
    if not ok:
        notes = " ".join(n for it in plan.items for n in it.notes)
        assert "dockerd --validate refuses the changed /etc/docker/daemon.json" in notes, notes
        assert str(tmp_path) not in notes


# ---------------------------------------------------------------------- a real dockerd starts
#: Keys a private dockerd must never take from a case tree (they would touch this machine's files).
#: Networking (bridge, iptables, ip-masq) stays as the tree says: the dockerd runs in a network
#: namespace of its own (unshare --net), so its firewall rules and bridge never reach the machine.
PRIVATE = ("hosts", "data-root", "exec-root", "pidfile", "containerd")
FLAG_OF = {v: k for k, v in FLAG_KEYS.items()}


def _private_values(base: Path) -> dict:
    return {"hosts": [f"unix://{base}/d.sock"], "data-root": str(base / "data"), "exec-root": str(base / "exec"),
            "pidfile": str(base / "pid")}


def _flags(settings: dict) -> list[str]:
    out = []
    for key, s in settings.items():
        name = FLAG_OF.get(key, key)
        values = s.value if isinstance(s.value, list) else [s.value]
        for v in values:
            out.append(f"--{name}={str(v).lower() if isinstance(v, bool) else v}")
    return out


def start_like(root: Path, base: Path) -> tuple[bool, str]:
    """Start a private dockerd 20.10 the way the tree's unit starts dockerd, with the tree's
    daemon.json: the keys in PRIVATE get private values in the place (flag or file) the tree sets
    them, so which source sets which key (what dockerd's conflict check looks at) is unchanged."""
    ctx = Context(Host(str(root), engine=False))
    cmd = ctx.daemon_cmdline()
    settings = dict(cmd.settings)
    path = ctx.daemon_json_path()
    text = ctx.host.read_text(path)
    data = json.loads(text) if text else {}
    private = _private_values(base)
    for key, value in private.items():
        if key in data and key not in settings:
            data[key] = value
        else:
            settings[key] = Setting(value, "test")
    settings.pop("containerd", None)
    settings.pop("config-file", None)
    base.mkdir(parents=True, exist_ok=True)
    (base / "daemon.json").write_text(json.dumps(data))
    argv = ["unshare", "--net", "--", shutil.which("dockerd") or "dockerd", *_flags(settings),
            f"--config-file={base / 'daemon.json'}"]
    return run_dockerd(argv, base)


def _ping(sock: str) -> bool:
    import socket

    try:
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(2)
            c.connect(sock)
            c.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"OK" in c.recv(4096)
    except OSError:
        return False


def run_dockerd(argv: list[str], base: Path) -> tuple[bool, str]:
    """Start dockerd (argv), see it answer on base/d.sock or exit; stop it. (started, why not)."""
    eng = _core.PrivateEngine(base)
    log = open(base / "log", "wb")
    eng.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if eng.proc.poll() is not None:
                tail = [ln for ln in (base / "log").read_text(errors="replace").splitlines() if "level=" not in ln]
                return False, " | ".join(tail)[-300:]
            if _ping(f"{base}/d.sock"):
                return True, ""
            time.sleep(0.1)
        return False, "did not answer within 60 s"
    finally:
        log.close()
        eng.stop()


def _flag_trees() -> list:
    out = []
    for c in SECTION_2 + EFFECTIVE:
        if any(p.endswith(("docker.service", ".conf")) and "ExecStart" in getattr(e, "content", "") and
               _has_flags(getattr(e, "content", "")) for p, e in c.tree.items()):
            out.append(c)
    return out


def _has_flags(unit_text: str) -> bool:
    for line in unit_text.splitlines():
        if line.startswith("ExecStart=") and len(line.split()) > 1:
            return True
    return False


@pytest.mark.skipif(_core.why_no_engine() is not None or not shutil.which("unshare"),
                    reason=str(_core.why_no_engine() or "unshare is not installed"))
def test_dockerd_starts_after_every_daemon_json_fix_of_a_tree_with_unit_flags(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    started, refused, no_write, broken_before, touches_machine = [], [], [], [], []
    distinct: dict = {}  # configuration after the fixes -> (case ids, fixed tree, tree before)
    t0 = time.monotonic()
    for case in _flag_trees():
        root = tmp_path / case.id.replace("/", "_")
        pristine = tmp_path / ("before-" + case.id.replace("/", "_"))
        build(root, case.tree)
        build(pristine, case.tree)
        ctx, findings, plan = _plan(root, ["2"])
        writes = [c for c in plan.changes if c.kind == "write" and c.path.endswith(".json")]
        d = ctx.daemon()
        if not writes:
            no_write.append(case.id)
            continue
        assert not (d.unknown or d.problems or d.conflicts), (case.id, d.unknown, d.problems, d.conflicts)
        assert apply_plan(ctx.host, plan).error is None
        after = Context(Host(str(root), engine=False))
        if after.daemon().get("userns-remap") is not None:
            touches_machine.append(case.id)  # dockerd would add a dockremap user to this machine
            continue
        key = (tuple(sorted((k, json.dumps(s.value)) for k, s in after.daemon_cmdline().settings.items())),
               after.host.read_text(after.daemon_json_path()))
        distinct.setdefault(key, ([], root, pristine))[0].append(case.id)

    def start(tree: Path) -> tuple[bool, str]:
        return start_like(tree, Path(tempfile.mkdtemp(prefix="dfx-fx-", dir="/tmp")))

    # dockerd mostly waits while it starts (containerd, its socket): a few at a time, each alone
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda v: start(v[1]), distinct.values()))
        failed = [(ids, pristine, why) for (ids, _, pristine), (ok, why) in zip(distinct.values(), results) if not ok]
        started = [i for (ids, _, _), (ok, _) in zip(distinct.values(), results) if ok for i in ids]
        # not started: did it start before the fixes? (a tree naming files or plugins this machine
        # lacks never started; that is the tree's doing, not the fix's)
        before = list(pool.map(lambda f: start(f[1]), failed))
    for (ids, _, why), (ok_before, why_before) in zip(failed, before):
        if ok_before:
            refused.append(f"{ids}: started before the fixes, not after: {why}")
        else:
            broken_before.append(f"{ids}: {why_before}")
    print(f"\n{len(started)} trees started after their daemon.json fixes ({len(distinct)} distinct configurations, "
          f"{time.monotonic() - t0:.1f} s); no daemon.json fix: {len(no_write)}; not started (userns-remap would "
          f"change this machine's users): {touches_machine}; did not start before the fixes either: {broken_before}")
    assert not refused, "\n".join(refused)
    assert len(started) >= 10, started


# ---------------------------------------------------------------------- live and offline agree
LIVE_CHECKS = ["2.2", "2.3", "2.4", "2.5", "2.7", "2.9", "2.11", "2.12", "2.14", "2.15", "2.16", "2.18"]


@pytest.mark.skipif(_core.why_no_engine() is not None or not shutil.which("unshare"),
                    reason=str(_core.why_no_engine() or "unshare is not installed"))
def test_live_and_offline_agree(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="dfx-lv-", dir="/tmp"))
    sock = f"{base}/d.sock"
    cfg = base / "daemon.json"
    cfg_text = '{\n  "experimental": true,\n  "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 4096, "Soft": 4096}}\n}\n'
    cfg.write_text(cfg_text)
    # the flag spellings in question: -H value and -H=value, -D, bare boolean, =0/=F, repeated lists
    flags = [f"--data-root={base}/data", "--exec-root", f"{base}/exec", f"-p{base}/pid", f"-H=unix://{sock}",
             "-H", f"unix://{base}/e.sock", "-H=:2375", "-D",
             "--live-restore", "--icc=0", "--userland-proxy=F", "--no-new-privileges", "--insecure-registry",
             "10.1.2.3:5000", "--insecure-registry=10.1.2.4:5000", "--config-file", str(cfg)]
    eng = _core.PrivateEngine(base)
    log = open(base / "log", "wb")
    # its own network namespace: dockerd's bridge and iptables rules stay out of this machine's
    eng.proc = subprocess.Popen(["unshare", "--net", "--", shutil.which("dockerd"), *flags], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(sock) or subprocess.run(["docker", "-H", f"unix://{sock}", "version"],
                                                         capture_output=True).returncode:
            assert eng.proc.poll() is None and time.monotonic() < deadline, (base / "log").read_text()[-600:]
            time.sleep(0.2)
        live = Context(Host("/", docker_host=f"unix://{sock}", engine=True))
        # the same configuration as a tree: Debian's unit, flags split between a drop-in and
        # /etc/default/docker (passed as $DOCKER_OPTS), the config file at the same path
        root = tmp_path / "tree"
        put_units(root)
        half = flags.index("-D")
        put(root, "etc/systemd/system/docker.service.d/local.conf",
            "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd " + " ".join(flags[:half]) + " $DOCKER_OPTS\n")
        put(root, "etc/default/docker", 'DOCKER_OPTS="' + " ".join(flags[half:]) + '"\n')
        put(root, str(cfg), cfg_text)
        offline = Context(Host(str(root), engine=False))
        got = {}
        for cis in LIVE_CHECKS:
            chk = next(c for c in REGISTRY.values() if c.cis == cis)
            got[cis] = ([str(f.status) for f in run_check(chk, live)], [str(f.status) for f in run_check(chk, offline)])
        assert all(a == b for a, b in got.values()), got
        assert live.daemon().cmd.source.startswith("dockerd command line (pid")
        assert "local.conf" in offline.daemon().cmd.source
        assert got["2.2"][0] == ["pass"] and got["2.3"][0] == ["fail"] and got["2.5"][0] == ["fail"], got
        # dockerd itself says where "-H=:2375" (no scheme) listens: TCP on localhost, as dockfix reads it
        assert "API listen on 127.0.0.1:2375" in (base / "log").read_text(errors="replace")
        assert got["2.7"][0] == ["fail"], got
        (f,) = run_check(REGISTRY["daemon-tls"], offline)
        assert "tcp://localhost:2375" in f.evidence, f.evidence
    finally:
        log.close()
        eng.stop()


# ---------------------------------------------------------------------- never a pass from a default
def _sections_1_to_3():
    return [c for c in REGISTRY.values() if c.section in ("1", "2", "3")]


@pytest.mark.parametrize("tree", ["empty", "unreadable-unit", "wrapper-unit"])
def test_no_pass_from_a_default_when_the_command_line_is_unknown(tmp_path, tree):
    if tree == "unreadable-unit":
        put(tmp_path, "lib/systemd/system/docker.service/")  # a folder where the unit should be: error
        put(tmp_path, "etc/docker/daemon.json", "{}\n")
    elif tree == "wrapper-unit":
        put_units(tmp_path, service="[Service]\nExecStart=/usr/local/bin/run-docker\n")
    ctx = Context(Host(str(tmp_path), engine=False))
    passed, statuses = [], {}
    for chk in _sections_1_to_3():
        for f in run_check(chk, ctx):
            statuses.setdefault(str(f.status), []).append(chk.cis)
            # a pass must be something seen: the owner and mode of a file that is there (section 3)
            seen = chk.section == "3" and f.subject and ctx.host.lstat(f.subject) is not None
            if f.status == Status.PASS and not seen:
                passed.append(f"{chk.cis} {chk.id}: {f.evidence}")
            if f.status == Status.MANUAL and chk.section == "2" and chk.id != "daemon-rootless":
                assert "unknown" in f.evidence or "could not be read" in f.evidence, f.evidence
    assert not passed, "\n".join(passed)
    # the unreadable unit is an error naming it (bad input); the unknown ones are manual, naming why
    assert len(statuses.get("error" if tree == "unreadable-unit" else "manual", [])) >= 15, statuses


# ---------------------------------------------------------------------- runtime options on a real engine
def test_security_opt_and_cpu_shares_as_the_engine_keeps_them(engine, tmp_path):
    """Containers created on the private dockerd with each spelling; dockfix reads back what the
    engine stored (HostConfig.SecurityOpt, CpuShares) and judges it as dockerd applies it."""
    from helpers import BUSYBOX_IMAGE

    made = {}
    for name, args in {
        "nnp-bare": ["--security-opt", "no-new-privileges"],
        "nnp-1": ["--security-opt", "no-new-privileges=1"],
        "nnp-colon-true": ["--security-opt", "no-new-privileges:true"],
        "nnp-0": ["--security-opt", "no-new-privileges=0"],
        "nnp-false": ["--security-opt", "no-new-privileges=false"],
        "shares-1024": ["--cpu-shares", "1024"],
        "shares-512": ["--cpu-shares", "512"],
        "seccomp-colon": ["--security-opt", "seccomp:unconfined"],
    }.items():
        r = engine.cli("create", "--name", name, "--network", "none", *args, BUSYBOX_IMAGE, "true", check=False)
        made[name] = r.returncode == 0 or r.stderr.strip()
    assert all(v is True for v in made.values()), made
    ctx = Context(Host(str(tmp_path), docker_host=engine.url, engine=True))

    def verdicts(cis: str) -> dict:
        chk = next(c for c in REGISTRY.values() if c.cis == cis)
        return {f.subject.split(":", 1)[1]: str(f.status) for f in run_check(chk, ctx) if f.subject}

    nnp = verdicts("5.26")
    assert {k: nnp[k] for k in ("nnp-bare", "nnp-1", "nnp-colon-true", "nnp-0", "nnp-false")} == {
        "nnp-bare": "pass", "nnp-1": "pass", "nnp-colon-true": "pass", "nnp-0": "fail", "nnp-false": "fail"}, nnp
    cpu = verdicts("5.12")
    assert (cpu["shares-1024"], cpu["shares-512"]) == ("fail", "pass"), cpu
    assert verdicts("5.22")["seccomp-colon"] == "fail"


def test_debug_in_daemon_json_is_removed_by_the_log_level_fix(tmp_path):
    put_units(tmp_path)
    put(tmp_path, "etc/docker/daemon.json", '{\n  "debug": true,\n  "icc": false\n}\n')
    ctx, findings, plan = _plan(tmp_path, ["log-level"])
    assert [str(f.status) for f in findings] == ["fail"] and len(plan.applicable()) == 1, plan.diff()
    assert apply_plan(ctx.host, plan).error is None
    assert json.loads((tmp_path / "etc/docker/daemon.json").read_text()) == {"icc": False}
    (f,) = run_check(REGISTRY["log-level"], Context(Host(str(tmp_path), engine=False)))
    assert str(f.status) == "pass", f.evidence


# ---------------------------------------------------------------------- dockerd's grammar, spelling by spelling
@pytest.mark.parametrize("argv", [
    ["-H", "tcp://0.0.0.0:2375", "-D", "--icc=false", "--insecure-registry", "a:5000", "--insecure-registry=b:5000"],
    ["-Htcp://0.0.0.0:2375", "--debug", "--icc=0", "--insecure-registry=a:5000", "--insecure-registry", "b:5000"],
    ["-H=tcp://0.0.0.0:2375", "-D=true", "--icc=F", "--insecure-registry=a:5000", "--insecure-registry=b:5000"],
    ["--host", "0.0.0.0:2375", "--debug=1", "--icc=FALSE", "--insecure-registry", "a:5000", "--insecure-registry", "b:5000"],
    ["--host=tcp://0.0.0.0:2375", "-D", "--icc=f", "--insecure-registry=a:5000", "--insecure-registry=b:5000", "--", "x"],
])
def test_equivalent_spellings_give_one_configuration(argv):
    from dockfix.sources.daemon_config import Arg, normalize_host, parse_args

    settings, problems = parse_args([Arg(a, "cmd") for a in argv])
    assert not problems
    got = {k: s.value for k, s in settings.items()}
    got["hosts"] = [normalize_host(h) for h in got["hosts"]]
    assert got == {"hosts": ["tcp://0.0.0.0:2375"], "debug": True, "icc": False, "insecure-registries": ["a:5000", "b:5000"]}


@pytest.mark.parametrize("given,means", [
    (":2375", "tcp://localhost:2375"), ("0.0.0.0:2375", "tcp://0.0.0.0:2375"), ("tcp://", "tcp://localhost:2375"),
    ("10.0.0.1", "tcp://10.0.0.1:2375"), ("[::]:2376", "tcp://[::]:2376"), ("", "unix:///var/run/docker.sock"),
    ("unix://", "unix:///var/run/docker.sock"), ("fd://", "fd://"), ("unix:///run/d.sock", "unix:///run/d.sock"),
])
def test_host_addresses_as_dockerd_reads_them(given, means):
    from dockfix.sources.daemon_config import normalize_host

    assert normalize_host(given) == means
