# A minimal Ansible connection plugin that reaches a running container with the docker CLI
# (`docker exec` and stdin/stdout pipes). ansible-core ships no docker connection; the full one
# lives in the community.docker collection. This one is enough to drive test hosts that are
# containers, and for admins whose "hosts" are containers on one engine.
from __future__ import annotations

DOCUMENTATION = """
    name: docker_cli
    short_description: run tasks in a running container with the docker CLI
    description:
      - Runs commands with C(docker exec) and moves files through its standard input and output,
        so it needs nothing in the container but C(/bin/sh), C(cat) and Python.
    author: dockfix
    options:
      remote_addr:
        description: name or id of the container
        default: inventory_hostname
        vars:
          - name: inventory_hostname
          - name: ansible_host
          - name: ansible_docker_container
      docker_host:
        description: the engine's URL, passed to the docker CLI with -H
        default: ''
        env:
          - name: DOCKER_HOST
        vars:
          - name: ansible_docker_host
      docker_cli:
        description: the docker client to run
        default: docker
        vars:
          - name: ansible_docker_cli
      remote_user:
        description: user in the container (docker exec --user); the image's default when empty
        default: ''
        vars:
          - name: ansible_user
    extends_documentation_fragment:
      - connection_pipelining
"""

import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    transport = "docker_cli"
    has_pipelining = True

    def _docker(self, *args: str) -> list[str]:
        cmd = [self.get_option("docker_cli")]
        if self.get_option("docker_host"):
            cmd += ["-H", self.get_option("docker_host")]
        return cmd + list(args)

    def _exec_args(self, interactive: bool = True) -> list[str]:
        args = ["exec"] + (["-i"] if interactive else [])
        if self.get_option("remote_user"):
            args += ["--user", self.get_option("remote_user")]
        return self._docker(*args, self.get_option("remote_addr"))

    def _connect(self):
        # Nothing to open: every call is its own `docker exec`. A missing or stopped container
        # shows up on the first call as an unreachable host.
        if not self._connected:
            display.vvv(f"ESTABLISH DOCKER_CLI CONNECTION TO {self.get_option('remote_addr')}",
                        host=self.get_option("remote_addr"))
            self._connected = True
        return self

    def _run(self, argv, **kw):
        p = subprocess.run(argv, **kw)
        err = p.stderr or b""
        if p.returncode in (1, 125, 126) and (b"No such container" in err or b"is not running" in err
                                               or b"Cannot connect to the Docker daemon" in err):
            raise AnsibleConnectionFailure(f"container {self.get_option('remote_addr')}: {to_text(err).strip()}")
        return p

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = self._exec_args() + ["/bin/sh", "-c", to_text(cmd)]
        display.vvv(f"EXEC {shlex.join(argv)}", host=self.get_option("remote_addr"))
        p = self._run(argv, input=in_data or b"", capture_output=True)
        return p.returncode, p.stdout, p.stderr

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self.get_option("remote_addr"))
        try:
            src = open(to_bytes(in_path), "rb")
        except FileNotFoundError:
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}") from None
        with src:
            p = self._run(self._exec_args() + ["/bin/sh", "-c", f"cat > {shlex.quote(to_text(out_path))}"],
                          stdin=src, capture_output=True)
        if p.returncode != 0:
            raise AnsibleError(f"failed to put {in_path} to {out_path}: {to_text(p.stderr).strip()}")

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self.get_option("remote_addr"))
        with open(to_bytes(out_path), "wb") as dst:
            p = self._run(self._exec_args(interactive=False) + ["cat", "--", to_text(in_path)],
                          stdout=dst, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise AnsibleError(f"failed to fetch {in_path}: {to_text(p.stderr).strip()}")

    def close(self):
        self._connected = False
