"""The only door to the machine: files under a root, processes, and the Docker engine.

Every file read and stat made by a check goes through :class:`Host`. Paths are written as they
are on the host (``/etc/docker/daemon.json``) and looked up under ``root``; symbolic links are
resolved as if ``root`` were ``/`` (an absolute link target never escapes the root), and nothing
that is not a regular file is ever opened for reading, so a FIFO or a device where a file should
be is reported instead of blocking the scan.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat as stat_mod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

from dockfix.model import CheckError

#: Largest file a check reads (bigger ones are reported, not read): 8 MiB.
MAX_READ = 8 * 1024 * 1024

SYSTEMD_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/usr/local/lib/systemd/system",
)


def kind_of(mode: int) -> str:
    for test, name in (
        (stat_mod.S_ISREG, "regular file"),
        (stat_mod.S_ISDIR, "directory"),
        (stat_mod.S_ISLNK, "symbolic link"),
        (stat_mod.S_ISFIFO, "FIFO"),
        (stat_mod.S_ISSOCK, "socket"),
        (stat_mod.S_ISCHR, "character device"),
        (stat_mod.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


@dataclass
class Host:
    """A host to scan: its files under ``root`` and, unless ``engine`` is False, its engine."""

    root: str = "/"
    docker_host: str | None = None
    engine: bool = True
    engine_timeout: float = 5.0
    _engine_cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = os.path.abspath(self.root)
        if self.docker_host is None:
            self.docker_host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    # ------------------------------------------------------------------ paths
    @property
    def is_live(self) -> bool:
        """True when the root is the machine's own ``/``."""
        return self.root == "/"

    def real(self, path: str) -> str:
        """The machine path of host path ``path`` (no link resolution)."""
        if not path.startswith("/"):
            # A relative path can come from a hostile config file ("tlscert": "../x"): name it.
            raise CheckError(f"{path}: not an absolute path")
        norm = os.path.normpath(path)
        if self.root == "/":
            return norm
        return self.root + ("" if norm == "/" else norm)

    def resolve(self, path: str) -> str:
        """Resolve links in host path ``path`` as if ``root`` were ``/``; returns a host path.

        The result never leaves the root. Missing components are kept as they are.
        """
        parts = [p for p in os.path.normpath(path).split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join(done + [part])
            try:
                st = os.lstat(self.real(candidate))
            except OSError:
                done.append(part)
                continue
            if stat_mod.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    raise CheckError(f"{path}: too many levels of symbolic links")
                target = os.readlink(self.real(candidate))
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
            else:
                done.append(part)
        return "/" + "/".join(done)

    # ------------------------------------------------------------------ stat
    def lstat(self, path: str) -> os.stat_result | None:
        """lstat of a host path (its last component is not followed); None when it does not exist.

        Links in the parent folders are resolved inside the root, so that ``/var/run -> /run`` in a
        tree under ``--root`` leads to the tree's ``/run``, never to this machine's."""
        if self.root != "/":
            parent, name = os.path.split(os.path.normpath(path))
            if parent != "/":
                path = os.path.join(self.resolve(parent), name)
        try:
            return os.lstat(self.real(path))
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except PermissionError:
            raise CheckError(f"{path}: permission denied") from None
        except OSError as e:
            raise CheckError(f"{path}: {e.strerror}") from None

    def stat(self, path: str) -> os.stat_result | None:
        """stat following links inside the root; None when it does not exist."""
        return self.lstat(self.resolve(path))

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def is_dir(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and stat_mod.S_ISDIR(st.st_mode)

    def is_file(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and stat_mod.S_ISREG(st.st_mode)

    # ------------------------------------------------------------------ reading
    def read_bytes(self, path: str, limit: int = MAX_READ) -> bytes | None:
        """Content of a regular file; None when absent.

        Raises CheckError (one line naming the file) when it is not a regular file, is too large,
        or cannot be read. Never opens a FIFO, socket or device: the entry is looked at (lstat)
        before it is opened, and what was opened is checked to be what was looked at. Links are
        resolved inside the root first; the resolved path is then opened one directory at a time
        without following any link, so a link swapped in meanwhile is refused, never followed.
        """
        target = self.resolve(path)
        parts = [p for p in target.split("/") if p]
        try:
            dfd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise CheckError(f"{path}: cannot open the root {self.root}: {e.strerror}") from None
        try:
            for name in parts[:-1]:
                try:
                    nfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                except FileNotFoundError:
                    return None
                except NotADirectoryError:
                    # O_PATH|O_NOFOLLOW on a link gives ENOTDIR: resolve() saw no link here.
                    try:
                        if stat_mod.S_ISLNK(os.lstat(name, dir_fd=dfd).st_mode):
                            raise CheckError(f"{path}: a symbolic link appeared on the way while reading; scan again")
                    except OSError:
                        pass
                    return None
                except OSError as e:
                    raise self._open_error(path, e) from None
                os.close(dfd)
                dfd = nfd
            if not parts:
                raise CheckError(f"{path}: is a directory, not a regular file")
            name = parts[-1]
            try:
                before = os.lstat(name, dir_fd=dfd)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as e:
                raise self._open_error(path, e) from None
            if not stat_mod.S_ISREG(before.st_mode):
                raise CheckError(f"{path}: is a {kind_of(before.st_mode)}, not a regular file")
            if before.st_size > limit:
                raise CheckError(f"{path}: too large to read ({before.st_size} bytes, limit {limit})")
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY,
                             dir_fd=dfd)
            except FileNotFoundError:
                return None
            except OSError as e:
                raise self._open_error(path, e) from None
        finally:
            os.close(dfd)
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) or not stat_mod.S_ISREG(st.st_mode):
                raise CheckError(f"{path}: changed while being read; scan again")
            if st.st_size > limit:
                raise CheckError(f"{path}: too large to read ({st.st_size} bytes, limit {limit})")
            chunks = []
            total = 0
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise CheckError(f"{path}: too large to read (over {limit} bytes)")
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as e:
            raise CheckError(f"{path}: {e.strerror}") from None
        finally:
            os.close(fd)

    @staticmethod
    def _open_error(path: str, e: OSError) -> CheckError:
        if e.errno in (errno.EACCES, errno.EPERM):
            return CheckError(f"{path}: permission denied")
        if e.errno == errno.ELOOP:
            return CheckError(f"{path}: a symbolic link appeared on the way while reading; scan again")
        if e.errno == errno.ENXIO:  # a socket, or a FIFO with no writer
            return CheckError(f"{path}: is not a regular file")
        return CheckError(f"{path}: {e.strerror}")

    def read_text(self, path: str, limit: int = MAX_READ) -> str | None:
        data = self.read_bytes(path, limit)
        if data is None:
            return None
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise CheckError(f"{path}: is UTF-16 text; only UTF-8 is read")
        if b"\0" in data:
            raise CheckError(f"{path}: is a binary file (contains NUL bytes)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise CheckError(f"{path}: line {line}: not valid UTF-8") from None
        return text.removeprefix("\ufeff")

    def listdir(self, path: str) -> list[str]:
        real = self.real(self.resolve(path))
        try:
            return sorted(os.listdir(real))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except PermissionError:
            raise CheckError(f"{path}: permission denied") from None

    def walk(self, path: str, *, max_files: int = 20000, refused: list[tuple[str, str]] | None = None
             ) -> Iterator[str]:
        """Host paths of the regular files below ``path``. Folder links are not followed; a link is resolved
        inside the root (as if the root were /) and yielded by its own path when it leads to a regular
        file; a dangling link, a loop or a link to anything else is left out and, when ``refused`` is
        given, added to it as (link, what it leads to).

        A top folder that cannot be listed raises CheckError (without root, a 0700 project folder
        must be reported, not taken for an empty one); unreadable folders below it are skipped.
        """
        real_top = self.real(self.resolve(path))
        count = 0
        skip_dirs = {".git", "node_modules", "__pycache__", ".venv", "venv", ".tox"}
        try:
            os.listdir(real_top)
        except PermissionError:
            raise CheckError(f"{path}: permission denied (cannot list the folder)") from None
        except OSError:
            pass
        for dirpath, dirnames, filenames in os.walk(real_top):
            dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if stat_mod.S_ISLNK(st.st_mode):
                    # resolved as if the root were / (a link never leads out of the root)
                    try:
                        target = self.resolve(self.unreal(full))
                    except CheckError:
                        target = None
                    try:
                        tst = os.stat(self.real(target), follow_symlinks=False) if target else None
                    except OSError:
                        tst = None
                    if tst is None or not stat_mod.S_ISREG(tst.st_mode):
                        if refused is not None:
                            why = ("a loop of links" if target is None else "leads to nothing" if tst is None
                                   else f"leads to {kind_of(tst.st_mode)}")
                            refused.append((self.unreal(full), f"{target or ''} ({why})"))
                        continue
                elif not stat_mod.S_ISREG(st.st_mode):
                    continue
                count += 1
                if count > max_files:
                    return
                yield self.unreal(full)

    def unreal(self, machine_path: str) -> str:
        """The host path of a machine path below the root."""
        if self.root == "/":
            return machine_path
        rel = os.path.relpath(machine_path, self.root)
        return "/" if rel == "." else "/" + rel

    def glob(self, directory: str, pattern: str) -> list[str]:
        return [f"{directory.rstrip('/')}/{n}" for n in self.listdir(directory) if fnmatch.fnmatch(n, pattern)]

    # ------------------------------------------------------------------ finding things
    def unit_file(self, name: str) -> str | None:
        """Host path of a systemd unit, as systemd finds it (/etc overrides /lib and /usr/lib)."""
        for d in SYSTEMD_DIRS:
            p = f"{d}/{name}"
            if self.lstat(p) is not None:
                return p
        return None

    def which(self, name: str) -> str | None:
        for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
            p = f"{d}/{name}"
            if self.is_file(p):
                return p
        return None

    # ------------------------------------------------------------------ engine
    @cached_property
    def docker(self):  # -> docker.DockerClient | None
        """The Docker SDK client, or None with ``--no-engine``. Connection errors surface later."""
        if not self.engine:
            return None
        import docker  # the SDK is only imported when an engine is scanned

        return docker.DockerClient(base_url=self.docker_host, timeout=self.engine_timeout, version="auto")  # type: ignore[arg-type]
