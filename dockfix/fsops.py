"""Careful file operations under a host root: the only code that changes files.

Link policy (what a fix may do to a path that is, or runs through, a symbolic link):

* Parent directories are walked from the root one component at a time with ``O_NOFOLLOW``: a
  link anywhere on the way is refused, so nothing is ever changed outside the root or somewhere
  the plan did not name. (Plans name paths with their parent links already resolved inside the
  root, e.g. ``/var/run/docker.sock`` becomes ``/run/docker.sock`` on a host where
  ``/var/run -> /run``; the plan shows the real path.)
* The final component is never followed either. Owner and mode are changed through a file
  descriptor opened with ``O_PATH | O_NOFOLLOW`` after checking that it is not a link, so a
  ``daemon.json -> /etc/shadow`` link can never make dockfix change ``/etc/shadow``.
* Content is written by creating a temporary file in the same directory, writing and fsyncing
  it, setting its owner and mode, then renaming it over the path and fsyncing the directory.
  The rename replaces the directory entry itself: a link at the path would be replaced, not
  followed — but plans refuse links at plan time, and the precondition check refuses one that
  appeared since.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import re
import stat as stat_mod
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

from dockfix.host import Host, kind_of


class FsError(Exception):
    """A file operation was refused or failed. The message names the file."""


@dataclass(frozen=True)
class FileState:
    """What a path is: enough to tell whether it changed, and to put it back."""

    existed: bool
    kind: str | None = None  # "file", "dir", "link", "socket", "fifo", "device", ...
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None  # permission bits (S_IMODE)
    sha256: str | None = None  # regular files only
    size: int | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict | None) -> "FileState | None":
        return None if d is None else cls(**{k: v for k, v in d.items() if k != "mtime_ns"})

    def same_as(self, other: "FileState | None") -> bool:
        if other is None:
            return False
        if not self.existed or not other.existed:
            return self.existed == other.existed
        return (self.kind, self.uid, self.gid, self.mode, self.sha256) == (
            other.kind, other.uid, other.gid, other.mode, other.sha256)

    def describe(self) -> str:
        if not self.existed:
            return "does not exist"
        return f"{self.kind} {self.uid}:{self.gid} {self.mode:04o}" if self.mode is not None else f"{self.kind}"

    def changes_from(self, old: "FileState") -> str:
        """What differs, in words (no content, no hash): 'mode 0644 -> 0600, content changed'."""
        if not old.existed and not self.existed:
            return "unchanged"
        if not self.existed:
            return "removed"
        if not old.existed:
            return f"created ({self.describe()})"
        out = []
        if old.kind != self.kind:
            out.append(f"now a {self.kind}, was a {old.kind}")
        if (old.uid, old.gid) != (self.uid, self.gid):
            out.append(f"owner {old.uid}:{old.gid} -> {self.uid}:{self.gid}")
        if old.mode != self.mode and old.mode is not None and self.mode is not None:
            out.append(f"mode {old.mode:04o} -> {self.mode:04o}")
        if old.sha256 != self.sha256:
            out.append("content changed")
        return ", ".join(out) or "unchanged"


def _kind(mode: int) -> str:
    if stat_mod.S_ISREG(mode):
        return "file"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISLNK(mode):
        return "link"
    if stat_mod.S_ISSOCK(mode):
        return "socket"
    if stat_mod.S_ISFIFO(mode):
        return "fifo"
    return "device" if (stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode)) else "other"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _split(path: str) -> list[str]:
    if not path.startswith("/"):
        raise FsError(f"{path}: not an absolute host path")
    parts = [p for p in os.path.normpath(path).split("/") if p]
    if any(p == ".." for p in parts):
        raise FsError(f"{path}: '..' is not allowed in a path to change")
    return parts


@contextmanager
def open_parent(host: Host, path: str, create: bool = False) -> Iterator[tuple[int, str]]:
    """(fd of the parent directory, final name) walking from the root without following links."""
    parts = _split(path)
    if not parts:
        raise FsError(f"{path}: cannot change the root itself")
    fd = os.open(host.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        done = ""
        for name in parts[:-1]:
            done += "/" + name
            try:
                nfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                raise FsError(f"{path}: directory {done} does not exist") from None
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    st = os.lstat(name, dir_fd=fd)
                    what = "a symbolic link" if stat_mod.S_ISLNK(st.st_mode) else f"a {kind_of(st.st_mode)}"
                    raise FsError(f"{path}: {done} is {what}; dockfix does not change files through links") from None
                raise FsError(f"{path}: {done}: {e.strerror}") from None
            os.close(fd)
            fd = nfd
        yield fd, parts[-1]
    finally:
        os.close(fd)


def _dir_rw_fd(parent_fd: int) -> int:
    """A real (non-O_PATH) descriptor of the same directory, for fsync and openat."""
    return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent_fd)


def state_of(host: Host, path: str) -> FileState:
    """The state of ``path`` itself (a link is reported as a link, never followed)."""
    try:
        with open_parent(host, path) as (pfd, name):
            try:
                st = os.lstat(name, dir_fd=pfd)
            except FileNotFoundError:
                return FileState(False)
            kind = _kind(st.st_mode)
            digest = None
            if kind == "file":
                digest = _hash_at(pfd, name, path)  # streamed: a huge file is never held in memory
            return FileState(True, kind, st.st_uid, st.st_gid, stat_mod.S_IMODE(st.st_mode), digest, st.st_size)
    except FsError as e:
        if "does not exist" in str(e):
            return FileState(False)
        raise


def _chunks_at(pfd: int, name: str, path: str, size: int) -> Iterator[bytes]:
    """The content of the regular file ``name`` in ``pfd`` (no link followed, a FIFO never waited
    on), ``size`` bytes at a time."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=pfd)
    except OSError as e:
        raise FsError(f"{path}: cannot read: {e.strerror}") from None
    try:
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            raise FsError(f"{path}: not a regular file")
        while b := os.read(fd, size):
            yield b
    finally:
        os.close(fd)


def _read_at(pfd: int, name: str, path: str) -> bytes:
    return b"".join(_chunks_at(pfd, name, path, 1 << 16))


def _hash_at(pfd: int, name: str, path: str) -> str:
    h = hashlib.sha256()
    for b in _chunks_at(pfd, name, path, 1 << 20):
        h.update(b)
    return h.hexdigest()


def read_file(host: Host, path: str) -> bytes | None:
    """Content of the regular file at ``path`` (no link followed); None when absent."""
    with open_parent(host, path) as (pfd, name):
        try:
            st = os.lstat(name, dir_fd=pfd)
        except FileNotFoundError:
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            raise FsError(f"{path}: is a {kind_of(st.st_mode)}, not a regular file")
        return _read_at(pfd, name, path)


def write_file(host: Host, path: str, data: bytes, uid: int, gid: int, mode: int) -> None:
    """Atomically replace (or create) ``path`` with ``data``, owner and mode set before the rename."""
    with open_parent(host, path) as (pfd, name):
        try:
            st = os.lstat(name, dir_fd=pfd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise FsError(f"{path}: is a {kind_of(st.st_mode)}; dockfix only replaces regular files")
        except FileNotFoundError:
            pass
        dfd = _dir_rw_fd(pfd)
        tmp = f".{name}.dockfix-{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                write_all(fd, data)
                _copy_xattrs(dfd, name, fd)
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)  # after chown: chown may clear set-id bits
                os.fsync(fd)
            finally:
                os.close(fd)
            if os.environ.get("DOCKFIX_FAULT_KILL_MIDWRITE") == path:  # tests: a crash before the rename
                os.kill(os.getpid(), signal.SIGKILL)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            tmp = ""
            os.fsync(dfd)
        except OSError as e:
            raise FsError(f"{path}: cannot write: {e.strerror}") from None
        finally:
            if tmp:
                try:
                    os.unlink(tmp, dir_fd=dfd)
                except OSError:
                    pass
            os.close(dfd)


def _copy_xattrs(dfd: int, name: str, dst_fd: int) -> None:
    """Carry the replaced file's extended attributes (SELinux label, ACLs, ...) over to the new one,
    as far as this filesystem and our privileges allow."""
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return  # a new file: nothing to carry over
    try:
        for attr in os.listxattr(src):
            try:
                os.setxattr(dst_fd, attr, os.getxattr(src, attr))
            except OSError:
                pass
    except OSError:
        pass
    finally:
        os.close(src)


@contextmanager
def _nofollow_fd(host: Host, path: str) -> Iterator[int]:
    with open_parent(host, path) as (pfd, name):
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        except FileNotFoundError:
            raise FsError(f"{path}: does not exist") from None
        try:
            st = os.fstat(fd)
            if stat_mod.S_ISLNK(st.st_mode):
                raise FsError(f"{path}: is a symbolic link; dockfix does not change owner or mode through links")
            yield fd
        finally:
            os.close(fd)


FS_IOC_GETFLAGS = 0x80086601
FS_IMMUTABLE_FL, FS_APPEND_FL = 0x10, 0x20


def _flags(fd: int) -> int:
    import fcntl

    try:
        buf = fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 8)
    except OSError:
        return 0  # a filesystem without attributes (or a special file): nothing to refuse
    return int.from_bytes(buf[:4], "little")


@dataclass(frozen=True)
class Obstacles:
    """What could make a change of ``path`` fail half-way, looked at before the first change."""

    immutable: bool = False  # chattr +i on the path
    append_only: bool = False  # chattr +a on the path
    parent_immutable: bool = False  # chattr +i/+a on its directory: no rename, create or remove in it
    read_only: bool = False  # the filesystem is mounted read-only
    nlink: int = 1
    free: int | None = None  # bytes free on its filesystem


def obstacles(host: Host, path: str) -> Obstacles:
    """Attributes (``lsattr``), the mount's read-only flag, hard links and free space of ``path``
    (or of its directory when it does not exist); no link is followed."""
    with open_parent(host, path) as (pfd, name):
        dfd = _dir_rw_fd(pfd)
        try:
            pflags = _flags(dfd)
            vfs = os.statvfs(dfd)
            flags, nlink = 0, 1
            try:
                st = os.lstat(name, dir_fd=dfd)
            except FileNotFoundError:
                st = None
            if st is not None and (stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISDIR(st.st_mode)):
                nlink = st.st_nlink if stat_mod.S_ISREG(st.st_mode) else 1
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY,
                                 dir_fd=dfd)
                except OSError:
                    fd = -1
                if fd >= 0:
                    try:
                        flags = _flags(fd)
                        vfs = os.fstatvfs(fd)
                    finally:
                        os.close(fd)
        finally:
            os.close(dfd)
    return Obstacles(immutable=bool(flags & FS_IMMUTABLE_FL), append_only=bool(flags & FS_APPEND_FL),
                     parent_immutable=bool(pflags & (FS_IMMUTABLE_FL | FS_APPEND_FL)),
                     read_only=bool(vfs.f_flag & os.ST_RDONLY), nlink=nlink, free=vfs.f_bavail * vfs.f_frsize)


def other_names(host: Host, path: str, limit: int = 200000) -> list[str]:
    """Other names (hard links) of the regular file at ``path`` found under the root, on the same
    filesystem, looking at no more than ``limit`` entries (links are not followed)."""
    real = host.real(path)
    try:
        st = os.lstat(real)
    except OSError:
        return []
    found, seen = [], 0
    for top, dirs, files in os.walk(host.root):
        try:
            if os.lstat(top).st_dev != st.st_dev:
                dirs[:] = []
                continue
        except OSError:
            continue
        if top == host.root:
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for f in files:
            seen += 1
            p = os.path.join(top, f)
            try:
                s2 = os.lstat(p)
            except OSError:
                continue
            if (s2.st_ino, s2.st_dev) == (st.st_ino, st.st_dev) and p != real:
                found.append(host.unreal(p))
        if seen > limit or len(found) >= st.st_nlink - 1:
            break
    return sorted(found)


def mtime_ns(host: Host, path: str) -> int | None:
    with _nofollow_fd(host, path) as fd:
        return os.fstat(fd).st_mtime_ns


def set_mtime(host: Host, path: str, mtime: int) -> None:
    """Put back a file's modification time (never through a link)."""
    with _nofollow_fd(host, path) as fd:
        try:
            os.utime(f"/proc/self/fd/{fd}", ns=(os.fstat(fd).st_atime_ns, mtime))
        except OSError as e:
            raise FsError(f"{path}: cannot set the modification time: {e.strerror}") from None


def _one_name(fd: int, path: str) -> None:
    """Owner and mode belong to the inode: a regular file with other names (a hard link made, or the
    file swapped for one, since the preflight) would change them all, perhaps outside the root."""
    st = os.fstat(fd)
    if stat_mod.S_ISREG(st.st_mode) and st.st_nlink > 1:
        raise FsError(f"{path}: has {st.st_nlink} hard links now; dockfix does not change the owner or mode of a file "
                      f"with several names")


def chown(host: Host, path: str, uid: int, gid: int) -> None:
    """Change the owner of ``path`` itself (never through a link, never of a file with other names)."""
    with _nofollow_fd(host, path) as fd:
        _one_name(fd, path)
        try:
            os.chown(f"/proc/self/fd/{fd}", uid, gid)
        except OSError as e:
            raise FsError(f"{path}: cannot change owner: {e.strerror}") from None


def chmod(host: Host, path: str, mode: int) -> None:
    """Change the mode of ``path`` itself (never through a link, never of a file with other names)."""
    with _nofollow_fd(host, path) as fd:
        _one_name(fd, path)
        try:
            os.chmod(f"/proc/self/fd/{fd}", mode)
        except OSError as e:
            raise FsError(f"{path}: cannot change mode: {e.strerror}") from None


def remove_stale_temporaries(host: Host, path: str) -> list[str]:
    """Remove what write_file leaves when killed before its rename: ``.<name>.dockfix-<pid>.tmp``
    regular files beside ``path`` whose process is gone. Returns the host paths removed."""
    pattern = re.compile(r"\." + re.escape(os.path.basename(path)) + r"\.dockfix-(\d+)\.tmp")
    removed = []
    try:
        with open_parent(host, path) as (pfd, _name):
            dfd = _dir_rw_fd(pfd)
            try:
                for entry in os.listdir(dfd):
                    m = pattern.fullmatch(entry)
                    if not m or int(m.group(1)) == os.getpid() or os.path.exists(f"/proc/{m.group(1)}"):
                        continue
                    if stat_mod.S_ISREG(os.lstat(entry, dir_fd=dfd).st_mode):
                        os.unlink(entry, dir_fd=dfd)
                        removed.append(os.path.join(os.path.dirname(path), entry))
                if removed:
                    os.fsync(dfd)
            finally:
                os.close(dfd)
    except (FsError, OSError):
        pass
    return removed


def remove_file(host: Host, path: str) -> None:
    """Remove a file, link or socket (not a directory); absent is fine."""
    with open_parent(host, path) as (pfd, name):
        dfd = _dir_rw_fd(pfd)
        try:
            os.unlink(name, dir_fd=dfd)
            os.fsync(dfd)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise FsError(f"{path}: cannot remove: {e.strerror}") from None
        finally:
            os.close(dfd)


def make_dir(host: Host, path: str, uid: int, gid: int, mode: int) -> None:
    with open_parent(host, path) as (pfd, name):
        dfd = _dir_rw_fd(pfd)
        try:
            os.mkdir(name, 0o700, dir_fd=dfd)
            os.fsync(dfd)
        except FileExistsError:
            pass
        except OSError as e:
            raise FsError(f"{path}: cannot create directory: {e.strerror}") from None
        finally:
            os.close(dfd)
    chown(host, path, uid, gid)
    chmod(host, path, mode)


def remove_dir(host: Host, path: str) -> None:
    """Remove an empty directory; absent is fine; a non-empty one is an error naming it."""
    with open_parent(host, path) as (pfd, name):
        dfd = _dir_rw_fd(pfd)
        try:
            os.rmdir(name, dir_fd=dfd)
            os.fsync(dfd)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise FsError(f"{path}: cannot remove directory: {e.strerror}") from None
        finally:
            os.close(dfd)


# ---------------------------------------------------------------------- files the user names
#: /dev/null's device number: writing "to /dev/null" discards, and leaves the device as it is.
NULL_DEVICE = os.makedev(1, 3)


def read_named_file(path: str, what: str, limit: int) -> bytes:
    """The bytes of a file on this machine that the user named (a waiver file, team notes): a
    regular file only (a FIFO is never waited on, a device never read), at most ``limit`` bytes.
    FsError "PATH: <what> not found" (is a directory, is not a regular file, too large, ...)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as f:
            if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
                raise FsError(f"{path}: {what} is not a regular file")
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise FsError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise FsError(f"{path}: {what} is a directory") from None
    except OSError as e:
        raise FsError(f"{path}: cannot read {what}: {e.strerror}") from None
    if len(data) > limit:
        raise FsError(f"{path}: {what} too large (limit {limit} bytes)")
    return data



def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

def write_named_file(path: str, data: bytes, mode: int = 0o644, *, umask: bool = True, keep: bool = False) -> bool:
    """Write a file on this machine that the user named (a report or plan from ``-o``, a waiver
    file, walkthrough progress) atomically: a temporary file is created fresh (O_EXCL, random name)
    in the target's folder, written, fsynced and given its mode, then renamed over ``path``. A link
    planted at a guessable name is never followed; a link at ``path`` is replaced, not followed.

    Only a regular file (or a link to one) is ever replaced: renaming over ``/dev/null`` is how a
    root-run ``-o /dev/null`` once turned the machine's /dev/null into a regular file. So
    ``/dev/null`` itself (a character device 1,3 by any name) discards the data and is left as it
    is (returns False); any other device, FIFO, socket or directory, a link to one, and a new name
    in /dev are refused with FsError naming ``path``.

    ``mode``: the new file's permission bits (less the umask when ``umask``). ``keep``: replacing
    an existing file keeps its mode and owner instead."""
    import tempfile

    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and stat_mod.S_ISCHR(st.st_mode) and st.st_rdev == NULL_DEVICE:
        return False
    if st is not None and not (stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISLNK(st.st_mode)):
        raise FsError(f"{path}: is a {kind_of(st.st_mode)}, not a file: dockfix writes regular files only")
    folder = os.path.dirname(os.path.abspath(path))
    real_folder = os.path.realpath(folder)
    in_dev = real_folder == "/dev" or real_folder.startswith("/dev/")
    if st is None and in_dev:
        raise FsError(f"{path}: dockfix creates no file in /dev")
    if st is not None and stat_mod.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            target = None  # a dangling link: replaced by the file
        if target is not None and (in_dev or not stat_mod.S_ISREG(target.st_mode)):
            raise FsError(f"{path}: leads to something that is not a file: dockfix writes regular files only")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dockfix-", suffix=".tmp", dir=folder)
    except OSError as e:
        raise FsError(f"{path}: cannot write: {e.strerror}") from None
    try:
        try:
            old = os.stat(path) if keep and st is not None else None
            if old is not None:
                try:
                    os.fchown(fd, old.st_uid, old.st_gid)
                except PermissionError:
                    pass
                os.fchmod(fd, stat_mod.S_IMODE(old.st_mode))  # after chown: chown may clear set-id bits
            else:
                mask = os.umask(0)
                os.umask(mask)
                os.fchmod(fd, mode & ~mask if umask else mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise FsError(f"{path}: cannot write: {e.strerror}") from None
    return True
