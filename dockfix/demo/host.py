"""The practice host behind `dockfix demo` and `dockfix walkthrough`.

A folder that looks like a small, badly kept Docker host: a tree under ``<folder>/host`` that
dockfix scans with ``--root`` (so nothing of the real machine is read or changed), a shop
project under ``/srv/shop`` of that tree (compose stack, Dockerfile, deploy script), and, where
dockerd is installed and we are root, a private engine of its own under ``<folder>/engine``
with a few badly configured containers and a swarm service.

Every fault is on purpose and covers one topic of the team's Docker notes; :data:`FAULTS` lists
them. Values that look like passwords are made up for the demo, and dockfix never prints them.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

#: Marks a folder as a demo host, so `--at DIR` never builds into (or deletes) anything else.
MARKER = ".dockfix-demo"
PROJECT = "/srv/shop"  # host path of the demo project, below the demo root
DEMO_UID = DEMO_GID = 1000  # "deploy", the user who should not own Docker's files

#: The made-up secrets planted in the demo (tests check none of them ever reaches an output).
DEMO_SECRETS = ("demo-Exp0rter-pw-not-real", "demo-Db-pw-not-real", "demo-Aws-key-not-real")

#: Topics of the team's notes and where the demo plants each fault (host paths).
FAULTS = [
    ("/etc/docker is owned by an ordinary user", "/etc/docker"),
    ("docker.service is owned by an ordinary user", "/lib/systemd/system/docker.service"),
    ("content trust is turned off", "/etc/profile.d/docker.sh, /srv/shop/deploy.sh"),
    ("the MySQL exporter's password is in an environment variable", "/srv/shop/compose.yaml"),
    ("the registry stores images on S3 without encryption", "/srv/shop/compose.yaml"),
    ("the registry serves plain HTTP", "/srv/shop/compose.yaml, /etc/docker/daemon.json"),
    ("the image build copies customer data and a .env file into the image", "/srv/shop/app/Dockerfile"),
    ("daemon.json is weak (icc, debug logging, experimental, no live-restore)", "/etc/docker/daemon.json"),
    ("no audit rules watch Docker's files", "/etc/audit/rules.d/audit.rules"),
]

COMPOSE = f"""\
# The shop's monitoring and image registry. Deployed with: docker compose up -d
services:
  db:
    image: mysql:8.0
    environment:
      MYSQL_DATABASE: shop
      MYSQL_ROOT_PASSWORD_FILE: /run/secrets/db_root_password
    secrets:
      - db_root_password

  exporter:
    image: prom/mysqld-exporter:v0.15.1
    command:
      - --mysqld.address=db:3306
      - --mysqld.username=exporter
    environment:
      MYSQLD_EXPORTER_PASSWORD: {DEMO_SECRETS[0]}
    ports:
      - "9104:9104"

  registry:
    image: registry:2
    ports:
      - "5000:5000"
    environment:
      REGISTRY_STORAGE: s3
      REGISTRY_STORAGE_S3_REGION: eu-west-1
      REGISTRY_STORAGE_S3_BUCKET: shop-internal-registry
      REGISTRY_STORAGE_S3_ENCRYPT: "false"
      REGISTRY_STORAGE_S3_V4AUTH: "true"

secrets:
  db_root_password:
    file: ./secrets/db_root_password.txt
"""

DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY app.py .
# the app reads its customer list and its settings at start
COPY data/customers.csv /app/data/customers.csv
COPY .env /app/.env
USER 1000
CMD ["python", "app.py"]
"""

DAEMON_JSON = {
    "icc": True,
    "log-level": "debug",
    "experimental": True,
    "live-restore": False,
    "insecure-registries": ["registry.shop.internal:5000"],
}

FILES: list[tuple[str, str | None, int, tuple[int, int]]] = [
    # host path, content (None: a folder), mode, owner
    ("/etc/docker/", None, 0o755, (DEMO_UID, DEMO_GID)),
    ("/etc/docker/daemon.json", json.dumps(DAEMON_JSON, indent=2) + "\n", 0o644, (0, 0)),
    ("/lib/systemd/system/docker.service",
     "[Unit]\nDescription=Docker Application Container Engine\nAfter=network-online.target docker.socket\n"
     "Requires=docker.socket\n\n[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// "
     "--containerd=/run/containerd/containerd.sock\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n",
     0o644, (DEMO_UID, DEMO_GID)),
    ("/lib/systemd/system/docker.socket",
     "[Unit]\nDescription=Docker Socket for the API\n\n[Socket]\nListenStream=/run/docker.sock\n"
     "SocketMode=0660\nSocketUser=root\nSocketGroup=docker\n\n[Install]\nWantedBy=sockets.target\n",
     0o644, (0, 0)),
    ("/etc/group", "root:x:0:\nadm:x:4:\ndocker:x:998:deploy\ndeploy:x:1000:\n", 0o644, (0, 0)),
    ("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndeploy:x:1000:1000:Deploy:/home/deploy:/bin/bash\n",
     0o644, (0, 0)),
    ("/etc/environment", 'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n', 0o644, (0, 0)),
    ("/etc/profile.d/docker.sh",
     "# set by the old build scripts: image signatures are not checked\nexport DOCKER_CONTENT_TRUST=0\n",
     0o644, (0, 0)),
    ("/etc/audit/rules.d/audit.rules",
     "## First rule - delete all\n-D\n## Increase the buffers to survive stress events.\n-b 8192\n"
     "## This determine how long to wait in burst of events\n--backlog_wait_time 60000\n"
     "## Set failure mode to syslog\n-f 1\n", 0o640, (0, 0)),
    ("/etc/audit/audit.rules",
     "## This file is automatically generated from /etc/audit/rules.d\n-D\n-b 8192\n--backlog_wait_time 60000\n-f 1\n",
     0o640, (0, 0)),
    ("/var/lib/docker/", None, 0o710, (0, 0)),
    ("/etc/default/docker", "# Docker Upstart and SysVinit configuration file\n#DOCKER_OPTS=\"--dns 8.8.8.8\"\n",
     0o644, (0, 0)),
    ("/etc/containerd/config.toml", "version = 2\n\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n",
     0o644, (0, 0)),
] + [
    # the programs the audit rules should watch; on the demo host they are placeholders, never run
    (f"/usr/bin/{name}", f"#!/bin/sh\n# demo host: stands in for {name}; dockfix never runs programs of a tree\n",
     0o755, (0, 0))
    for name in ("dockerd", "docker", "containerd", "containerd-shim-runc-v2", "runc")
] + [
    ("/run/containerd/", None, 0o711, (0, 0)),
    (f"{PROJECT}/compose.yaml", COMPOSE, 0o644, (DEMO_UID, DEMO_GID)),
    (f"{PROJECT}/secrets/db_root_password.txt", DEMO_SECRETS[1] + "\n", 0o640, (0, 999)),  # mysql (999) reads it; nobody else
    (f"{PROJECT}/deploy.sh",
     "#!/bin/sh\n# pull and restart the shop's monitoring and registry\nset -e\ncd /srv/shop\n"
     "docker pull --disable-content-trust prom/mysqld-exporter:v0.15.1\n"
     "docker pull --disable-content-trust registry:2\ndocker compose up -d\n", 0o755, (DEMO_UID, DEMO_GID)),
    (f"{PROJECT}/app/Dockerfile", DOCKERFILE, 0o644, (DEMO_UID, DEMO_GID)),
    (f"{PROJECT}/app/app.py", "import csv\n\nprint(sum(1 for _ in csv.reader(open('/app/data/customers.csv'))))\n",
     0o644, (DEMO_UID, DEMO_GID)),
    (f"{PROJECT}/app/requirements.txt", "requests==2.32.3\n", 0o644, (DEMO_UID, DEMO_GID)),
    (f"{PROJECT}/app/data/customers.csv",
     "id,name,email,iban\n1,Ada Example,ada@example.com,DE00 0000 0000 0000 0000 01\n"
     "2,Ben Example,ben@example.com,DE00 0000 0000 0000 0000 02\n", 0o644, (DEMO_UID, DEMO_GID)),
    (f"{PROJECT}/app/.env", f"DB_HOST=db\nDB_USER=shop\nDB_PASSWORD={DEMO_SECRETS[1]}\n"
     f"AWS_SECRET_ACCESS_KEY={DEMO_SECRETS[2]}\n", 0o644, (DEMO_UID, DEMO_GID)),
]


@dataclass
class DemoHost:
    """A built demo host. ``close()`` undoes everything it started and (unless kept) made."""

    folder: Path
    keep: bool = False
    engine: object | None = None  # dockfix.demo.private_engine.PrivateEngine when one runs
    #: Why the engine is not part of the demo (None when it is).
    no_engine_reason: str | None = None
    closed: bool = False
    problems: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def root(self) -> Path:
        return self.folder / "host"

    @property
    def project(self) -> Path:
        """The demo project as a machine path (give it to --path)."""
        return self.root / PROJECT.lstrip("/")

    @property
    def compose_file(self) -> Path:
        return self.project / "compose.yaml"

    @property
    def docker_host(self) -> str | None:
        return self.engine.url if self.engine is not None else None  # type: ignore[attr-defined]

    def path(self, host_path: str) -> str:
        """The machine path of a host path of the demo (for commands a trainee types)."""
        return str(self.root) + host_path

    def args(self, notes: str | None = None, **extra):
        """A command-line namespace scanning this demo host, as `dockfix scan` would get it."""
        import argparse

        ns = argparse.Namespace(
            root=str(self.root), docker_host=self.docker_host, no_engine=self.engine is None,
            path=[str(self.project)], compose=[], notes=notes, only=[], skip=[], demo=self,
        )
        for k, v in extra.items():
            setattr(ns, k, v)
        return ns

    def context(self):
        """A scan Context on this demo host."""
        from dockfix.host import Host
        from dockfix.context import Context

        host = Host(root=str(self.root), docker_host=self.docker_host, engine=self.engine is not None)
        return Context(host=host, paths=[PROJECT], compose=[])

    def left_out(self) -> str | None:
        """One paragraph on what the demo leaves out and why (None when nothing is left out)."""
        if self.engine is not None:
            return None
        return (f"The demo runs on files alone because {self.no_engine_reason}. Left out: the checks that "
                "need a running engine - containers (CIS section 5: a privileged container, a password "
                "in a container's environment, the Docker socket mounted into a container), the swarm "
                "service (section 7) and the daemon's live settings from `docker info`.")

    def close(self) -> list[str]:
        """Stop the engine and remove the folder (unless kept). Safe to call twice."""
        with self._lock:
            if self.closed:
                return self.problems
            self.closed = True
            if self.engine is not None:
                self.problems += self.engine.stop(remove=True)  # type: ignore[attr-defined]
            if not self.keep:
                from dockfix.demo.private_engine import mounts_below

                left = mounts_below(self.folder)
                if left:
                    self.problems.append(f"{self.folder} not removed: still mounted: {', '.join(left)}")
                else:
                    from dockfix.demo.private_engine import remove_own_tree

                    self.problems += remove_own_tree(self.folder)[:5]
            return self.problems


def write_tree(root: Path) -> None:
    """Plant the demo's files under ``root`` with their owners and modes."""
    can_chown = os.geteuid() == 0
    for host_path, content, mode, owner in FILES:
        p = root / host_path.strip("/")
        if content is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content, encoding="utf-8")
        if can_chown:
            os.chown(p, *owner)
        os.chmod(p, mode)
    # containerd's socket, as a real (if silent) unix socket
    sock_path = root / "run/containerd/containerd.sock"
    if not sock_path.exists() and len(str(sock_path)) < 100:
        import socket

        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(sock_path))
        os.chmod(sock_path, 0o660)


class DemoError(Exception):
    """The demo cannot be built (one line)."""


def prepare_folder(at: str | None) -> tuple[Path, bool]:
    """(folder, keep). A new temporary folder, or ``at`` (created, or an earlier demo host)."""
    if at is None:
        return Path(tempfile.mkdtemp(prefix="dockfix-demo-", dir="/tmp")), False
    folder = Path(at).resolve()
    if folder.exists():
        if not folder.is_dir():
            raise DemoError(f"{at}: --at must be a folder")
        if any(folder.iterdir()) and not (folder / MARKER).is_file():
            raise DemoError(f"{at}: not empty and not a dockfix demo folder (no {MARKER}); choose another --at")
    folder.mkdir(parents=True, exist_ok=True)
    return folder, True


def build_demo(at: str | None = None, engine: bool = True, on_step: Callable[[str], None] | None = None) -> DemoHost:
    """Build the demo host; start its engine when ``engine`` and this machine allows it.

    With ``at`` naming an earlier demo folder, its host tree is kept as the trainee left it.
    """
    say = on_step or (lambda _m: None)
    folder, keep = prepare_folder(at)
    demo = DemoHost(folder=folder, keep=keep)
    try:
        if not (folder / MARKER).is_file() or not demo.root.is_dir():
            say(f"planting the demo's files under {demo.root}")
            write_tree(demo.root)
            (folder / MARKER).write_text("dockfix demo host; safe to delete\n")
        else:
            say(f"reusing the demo host in {folder}")
        if not engine:
            demo.no_engine_reason = "the private engine was not asked for"
        else:
            from dockfix.demo.private_engine import why_no_engine

            demo.no_engine_reason = why_no_engine()
        if demo.no_engine_reason is None:
            start_engine(demo, say)
    except BaseException:
        demo.close()
        raise
    return demo


def start_engine(demo: DemoHost, say: Callable[[str], None]) -> None:
    from dockfix.demo.private_engine import BUSYBOX_IMAGE, EngineError, PrivateEngine

    base = demo.folder / "engine"
    if len(str(base / "docker.sock")) > 100:
        demo.no_engine_reason = f"the folder {demo.folder} is too deep for a unix socket; use a shorter --at"
        return
    if base.exists():
        from dockfix.demo.private_engine import mounts_below

        from dockfix.demo.private_engine import remove_own_tree

        if mounts_below(base):
            raise DemoError(f"{base}: an engine of an earlier demo still has mounts here; is it still running?")
        left = remove_own_tree(base)
        if left:
            raise DemoError(f"{base}: cannot remove the earlier demo's engine folder: {left[0]}")
    say("starting a private dockerd (its own data root and socket; no bridge, no iptables)")
    eng = PrivateEngine(base, swarm=True)
    demo.engine = eng
    try:
        eng.start()
        say("creating the demo's containers and swarm service")
        plant_runtime(eng, BUSYBOX_IMAGE)
    except EngineError as e:
        eng.stop(remove=True)
        demo.engine = None
        demo.no_engine_reason = f"the private dockerd could not be started ({e})"


def plant_runtime(eng, image: str) -> None:
    """Containers and a swarm service with the faults the notes warn about."""
    c = eng.client()
    try:
        # a privileged "debug" container (privileged containers cannot start here: created only)
        c.containers.create(image, ["sleep", "3600"], name="shop-debug", privileged=True, network_mode="none")
        # the exporter run by hand, with its password in the environment
        c.containers.run(image, ["sleep", "3600"], name="shop-exporter", detach=True, network_mode="none",
                         environment={"MYSQLD_EXPORTER_PASSWORD": DEMO_SECRETS[0]})
        # a "deploy agent" given the Docker socket: root on the host for whoever controls it
        c.containers.run(image, ["sleep", "3600"], name="shop-agent", detach=True, network_mode="none",
                         volumes={eng.sock: {"bind": "/var/run/docker.sock", "mode": "rw"}})
        # the registry as a swarm service: S3 without encryption, and a key in its environment
        from docker.types import EndpointSpec

        c.services.create(image, ["sleep", "3600"], name="shop-registry",
                          env=["REGISTRY_STORAGE=s3", "REGISTRY_STORAGE_S3_REGION=eu-west-1",
                               "REGISTRY_STORAGE_S3_BUCKET=shop-internal-registry",
                               "REGISTRY_STORAGE_S3_ENCRYPT=false",
                               f"REGISTRY_STORAGE_S3_SECRETKEY={DEMO_SECRETS[2]}"],
                          endpoint_spec=EndpointSpec(mode="vip"))
    finally:
        c.close()


# ---------------------------------------------------------------------- cleanup on signals
class cleanup_on_signals:
    """While active, SIGTERM and SIGHUP end the program through normal exception handling (so every
    ``finally`` runs and the demo is removed); ``on_signal`` may be set to stop a running app
    instead. Enter it *before* building the demo and set ``demo`` once built, so a signal during the
    build also cleans up. An atexit hook closes the demo as a last resort."""

    def __init__(self, demo: DemoHost | None = None):
        self.demo = demo
        self.on_signal: Callable[[], None] | None = None
        self._old: dict[int, object] = {}

    def _handler(self, signum, _frame) -> None:
        if self.on_signal is not None:
            cb, self.on_signal = self.on_signal, None
            cb()
            return
        raise SystemExit(128 + signum)

    def _close(self) -> None:
        if self.demo is not None:
            self.demo.close()

    def __enter__(self) -> "cleanup_on_signals":
        import atexit

        atexit.register(self._close)
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGHUP):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        main = threading.current_thread() is threading.main_thread()
        held = {}
        if main:  # a second Ctrl-C or SIGTERM must not cut the cleanup short
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                held[s] = signal.signal(s, signal.SIG_IGN)
        try:
            self._close()
        finally:
            for s, old in held.items():
                signal.signal(s, old)
            for s, old in self._old.items():
                signal.signal(s, old)  # type: ignore[arg-type]
