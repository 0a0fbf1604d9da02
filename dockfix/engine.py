"""The running engine, fetched once per scan and shared by every check.

Each kind of object (info, version, containers, ...) is fetched at most once; a dead or slow
engine raises :class:`~dockfix.model.CheckError` with the reason, and every later request fails
fast with the same reason instead of waiting again.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from dockfix.model import CheckError


def process_names(proc: str = "/proc") -> dict[int, str]:
    """{pid: command name (comm)} of every process on this machine.

    One small read per process with os.open/os.read: with thousands of processes (a host running
    hundreds of containers) Python's buffered open() and a read of each cmdline cost several
    times more.
    """
    out: dict[int, str] = {}
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            fd = os.open(f"{proc}/{pid}/comm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            out[int(pid)] = os.read(fd, 64).decode("utf-8", "replace").rstrip("\n")
        except OSError:
            continue
        finally:
            os.close(fd)
    return out


def read_cmdline(pid: int, proc: str = "/proc") -> list[str]:
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def dockerd_processes(proc: str = "/proc") -> list[tuple[int, list[str]]]:
    """(pid, argv) of every dockerd process on this machine."""
    out = []
    for pid, name in process_names(proc).items():
        if name != "dockerd":
            continue
        argv = read_cmdline(pid, proc)
        if argv and os.path.basename(argv[0]) == "dockerd":
            out.append((pid, argv))
    return sorted(out)


def _hosts_of(argv: list[str]) -> list[str]:
    hosts = []
    for i, a in enumerate(argv):
        if a in ("-H", "--host") and i + 1 < len(argv):
            hosts.append(argv[i + 1])
        elif a.startswith("--host="):
            hosts.append(a.split("=", 1)[1])
        elif a.startswith("-H") and len(a) > 2:
            hosts.append(a[2:].lstrip("="))
    return hosts


def _norm_unix(url: str) -> str:
    path = url[len("unix://"):] if url.startswith("unix://") else url
    path = os.path.normpath(path)
    return "/run" + path[len("/var/run"):] if path.startswith("/var/run/") else path


def daemon_argv_for(docker_host: str, procs: list[tuple[int, list[str]]] | None = None) -> tuple[int, list[str]] | None:
    """The dockerd that serves ``docker_host`` (a host can run several), or None."""
    procs = dockerd_processes() if procs is None else procs
    want = _norm_unix(docker_host) if docker_host.startswith("unix://") else docker_host.split("://")[-1]
    default_sock = "/run/docker.sock"
    for pid, argv in procs:
        hosts = _hosts_of(argv)
        if not hosts and want == default_sock:
            return pid, argv
        for h in hosts:
            if h.startswith("unix://") and _norm_unix(h) == want:
                return pid, argv
            if h.startswith("fd://") and want == default_sock:  # socket activation: docker.socket
                return pid, argv
            if h.startswith("tcp://") and h.split("://")[-1] == want:
                return pid, argv
    return None


class RawAPI:
    """Read-only JSON over HTTP/1.1 to the engine, with sockets only.

    The Docker SDK costs ~0.2 s to import and ``http.client`` pulls in ``ssl`` and ``email``; a
    scan needs nothing but GETs, so it speaks the little HTTP it needs to the unix socket (or a
    plain TCP endpoint) itself, with one keep-alive connection per thread. A TLS endpoint
    (``DOCKER_TLS_VERIFY``) goes through ``http.client``. Paths are given unversioned; ``prefix``
    (``/v1.51``, set by :class:`Engine` once the engine told its version) is put before them.
    """

    prefix = ""

    def __init__(self, url: str, timeout: float = 5.0, connect_timeout: float = 2.0):
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._local = threading.local()
        if url.startswith("unix://"):
            self.kind, self.address = "unix", url[len("unix://"):]
        elif url.startswith(("tcp://", "http://", "https://")):
            hostport = url.split("://", 1)[1].rstrip("/")
            tls = url.startswith("https://") or (url.startswith("tcp://") and bool(os.environ.get("DOCKER_TLS_VERIFY")))
            self.kind, self.address = ("tls" if tls else "tcp"), hostport
        else:
            raise CheckError(f"engine {url}: unsupported address (use unix:// or tcp://)")

    def _connect(self):
        import socket

        if self.kind == "tls":
            return _TLSConnection(self)
        if self.kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = self.address
        else:
            host, _, port = self.address.rpartition(":")
            s = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET, socket.SOCK_STREAM)
            target = (host.strip("[]"), int(port or 2375))
        s.settimeout(self.connect_timeout)
        try:
            s.connect(target)
        except OSError:
            s.close()
            raise
        s.settimeout(self.timeout)
        return _Connection(s)

    def get(self, path: str, decode: bool = True) -> Any:
        """GET ``path`` and decode the JSON answer (the bytes with decode=False).

        Raises OSError (refused, timed out, dropped), or ApiError when the engine answers with an error.
        """
        import json

        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            fresh = conn is None
            if fresh:
                conn = self._local.conn = self._connect()
            try:
                status, body = conn.get(self.prefix + path)
            except (ConnectionResetError, BrokenPipeError):
                # a kept-alive connection the engine closed meanwhile: retry once on a new one
                conn.close()
                self._local.conn = None
                if fresh or attempt == 2:
                    raise
                continue
            except BaseException:
                conn.close()
                self._local.conn = None
                raise
            if status >= 400:
                raise ApiError(status, _message(body), path)
            if not decode:
                return body
            return json.loads(body) if body else None
        raise AssertionError("unreachable")

    def header(self, name: str) -> str:
        """A header of this thread's last answer ("" when absent)."""
        conn = getattr(self._local, "conn", None)
        value = getattr(conn, "headers", {}).get(name.lower().encode(), b"") if conn is not None else b""
        return value.decode("ascii", "replace").strip()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _Connection:
    """Just enough HTTP/1.1 for GET: status line, headers, a Content-Length or chunked body."""

    MAX_BODY = 512 * 1024 * 1024

    def __init__(self, sock):
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.headers: dict[bytes, bytes] = {}  # of the last answer, names in lower case

    def get(self, path: str) -> tuple[int, bytes]:
        request = f"GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockfix\r\nAccept: application/json\r\n\r\n"
        self.sock.sendall(request.encode("ascii"))
        line = self.reader.readline(65537)
        if not line:
            raise ConnectionResetError("the engine closed the connection without an answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ConnectionResetError(f"not an HTTP answer: {line[:60]!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        while True:
            h = self.reader.readline(65537)
            if not h:
                raise ConnectionResetError("the engine closed the connection in the middle of an answer")
            if h in (b"\r\n", b"\n"):
                break
            k, _, v = h.partition(b":")
            headers[k.strip().lower()] = v.strip()
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body = self._chunked()
        elif b"content-length" in headers:
            n = int(headers[b"content-length"])
            if n > self.MAX_BODY:
                raise ConnectionResetError(f"answer too large ({n} bytes)")
            body = self._exactly(n)
        else:
            body = self.reader.read()
            self.close()
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        self.headers = headers
        return status, body

    def _exactly(self, n: int) -> bytes:
        data = self.reader.read(n)
        if len(data) != n:
            raise ConnectionResetError("the engine closed the connection in the middle of an answer")
        return data

    def _chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            size_line = self.reader.readline(1024)
            if not size_line:
                raise ConnectionResetError("the engine closed the connection in the middle of an answer")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.reader.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > self.MAX_BODY:
                raise ConnectionResetError("answer too large")
            chunks.append(self._exactly(size))
            self._exactly(2)  # CRLF after each chunk

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class _TLSConnection:
    """A TLS endpoint (DOCKER_TLS_VERIFY, certificates in DOCKER_CERT_PATH) through http.client."""

    def __init__(self, api: RawAPI):
        import http.client
        import ssl

        certs = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        ctx.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
        host, _, port = api.address.rpartition(":")
        self.conn = http.client.HTTPSConnection(host, int(port or 2376), timeout=api.timeout, context=ctx)

    def get(self, path: str) -> tuple[int, bytes]:
        import http.client

        try:
            self.conn.request("GET", path, headers={"Accept": "application/json"})
            resp = self.conn.getresponse()
            self.headers = {k.lower().encode(): v.encode() for k, v in resp.getheaders()}
            return resp.status, resp.read()
        except (http.client.CannotSendRequest, http.client.BadStatusLine) as e:
            raise ConnectionResetError(str(e)) from None

    def close(self) -> None:
        self.conn.close()


class ApiError(Exception):
    """The engine answered with an HTTP error."""

    def __init__(self, status: int, message: str, path: str):
        super().__init__(f"{message} (HTTP {status} on {path.split('?')[0]})")
        self.status = status
        self.message = message


def _message(body: bytes) -> str:
    import json

    try:
        return str(json.loads(body).get("message", "")).strip() or "error"
    except Exception:
        return body[:200].decode("utf-8", "replace").strip() or "error"


#: Threads used to inspect containers and images. dockerd answers an inspect in well under a
#: millisecond and this box has two cores: more threads only add contention.
INSPECT_WORKERS = 4


class Engine:
    """Lazy, cached, thread-safe access to one engine, fetched once per scan.

    Shared fetches (each a list of plain dicts as the API returns them):

    - ``containers``: the inspect document of every container, running or not;
    - ``images``: the inspect document of every image (``docker image inspect``);
    - ``services``, ``tasks``, ``nodes``, ``secrets``: swarm objects ([] when this engine is not an
      active swarm manager);
    - ``networks``: every network (list form; overlay options included);
    - ``swarm``: the swarm's inspect document (None when not a manager).

    The first request is a ``/_ping`` with a short timeout that every caller waits on; if it
    fails, or any request fails to connect, the engine is marked dead and every later request
    raises the same :class:`CheckError` at once.

    API version: dockfix speaks no fixed version. The engine's answer to the ping names its API
    version (the ``API-Version`` header, which the docker CLI negotiates from too); an engine whose
    ping does not is asked ``/version``. Every later request goes under that version
    (``/v1.41/...`` on 20.10, ``/v1.51/...`` on 28.5), or under ``$DOCKER_API_VERSION`` when that is
    set (as the docker CLI does). An engine that gives no version is asked without one.
    """

    def __init__(self, client_factory: Callable[[], Any], url: str, timeout: float = 5.0,
                 connect_timeout: float = 2.0):
        self._factory = client_factory
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._ping_lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._pending: dict[str, threading.Lock] = {}
        self._dead: str | None = None
        self._raw: RawAPI | None = None
        #: the API version every request is sent under ("" until negotiated, or when unknown)
        self.api_version = ""

    def _client(self):
        return self.fetch("client", self._factory)

    def fetch(self, name: str, getter: Callable[[], Any]) -> Any:
        """Run ``getter`` once per scan; cache its value or its failure."""
        with self._lock:
            if name in self._cache:
                value = self._cache[name]
                if isinstance(value, CheckError):
                    raise value
                return value
            if self._dead:
                raise CheckError(self._dead)
            pending = self._pending.setdefault(name, threading.Lock())
        with pending:  # one fetch per name: concurrent callers wait for it instead of repeating it
            return self._fetch_once(name, getter)

    def _fetch_once(self, name: str, getter: Callable[[], Any]) -> Any:
        with self._lock:
            if name in self._cache:
                value = self._cache[name]
                if isinstance(value, CheckError):
                    raise value
                return value
            if self._dead:
                raise CheckError(self._dead)
        try:
            value = getter()
        except CheckError as e:
            value = e
        except Exception as e:  # ApiError, OSError, http.client errors, docker.errors.*
            value = CheckError(f"engine {self.url}: {_reason(e)}")
            if _is_connection_error(e):
                with self._lock:
                    # the first failure names the reason for every object of the engine
                    self._dead = self._dead or str(value)
                    value = CheckError(self._dead)
        with self._lock:
            self._cache.setdefault(name, value)
            value = self._cache[name]
        if isinstance(value, CheckError):
            raise value
        return value

    # ------------------------------------------------------------------ raw reads
    def get(self, path: str) -> Any:
        """GET an API path (``/containers/json?all=1``) after the engine answered its ping."""
        self._alive()
        if self._raw is None:
            with self._lock:
                if self._raw is None:
                    raw = RawAPI(self.url, self.timeout, self.connect_timeout)
                    raw.prefix = f"/v{self.api_version}" if self.api_version else ""
                    self._raw = raw
        return self._raw.get(path)

    def _alive(self) -> None:
        """Ping once with a short timeout; every concurrent caller waits for that one answer."""
        with self._ping_lock:
            if "ping" in self._cache:
                if isinstance(self._cache["ping"], CheckError):
                    raise self._cache["ping"]
                return
            try:
                raw = RawAPI(self.url, timeout=self.connect_timeout, connect_timeout=self.connect_timeout)
                try:
                    raw.get("/_ping", decode=False)
                    version: Any = {"ApiVersion": raw.header("API-Version")}
                    if not _is_api_version(version["ApiVersion"]):
                        # negotiate: /version is answered unversioned by every engine
                        try:
                            version = raw.get("/version")
                            if isinstance(version, dict):
                                self._cache.setdefault("version", version)
                        except ApiError:
                            version = None
                finally:
                    raw.close()
                self._cache["ping"] = True
                self.api_version = negotiate_api_version(version)
            except CheckError as e:
                self._cache["ping"] = e
            except Exception as e:
                self._cache["ping"] = CheckError(f"engine {self.url}: {_reason(e)}")
            value = self._cache["ping"]
            if isinstance(value, CheckError):
                with self._lock:
                    self._dead = self._dead or str(value)
                raise value

    # ------------------------------------------------------------------ shared objects
    def info(self) -> dict[str, Any]:
        return self.fetch("info", lambda: self.get("/info"))

    def version(self) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            try:
                return self.get("/version")
            except (OSError, ApiError):
                # A rootless dockerd 28 behind ``rootlesskit --net=host`` drops /version (it panics filling
                # in rootlesskit's network details); docker info names the version too. A dead engine
                # fails the info request as well, with its reason.
                info = self.info()
                return {"Version": info.get("ServerVersion"), "ApiVersion": self.api_version or None}

        return self.fetch("version", get)

    def containers(self) -> list[dict[str, Any]]:
        """Inspect documents of all containers (running or not), in the engine's list order."""
        return self.fetch("containers", lambda: self._inspect_all("/containers/json?all=1", "/containers/{}/json"))

    def images(self) -> list[dict[str, Any]]:
        """Inspect documents of all (non-intermediate) images."""
        return self.fetch("images", lambda: self._inspect_all("/images/json", "/images/{}/json"))

    def image_history(self, image_id: str) -> list[dict[str, Any]]:
        return self.fetch(f"history:{image_id}", lambda: self.get(f"/images/{image_id}/history"))

    def networks(self) -> list[dict[str, Any]]:
        return self.fetch("networks", lambda: self.get("/networks"))

    def is_manager(self) -> bool:
        sw = self.info().get("Swarm") or {}
        return sw.get("LocalNodeState") == "active" and bool(sw.get("ControlAvailable"))

    def _manager_list(self, name: str, path: str) -> list[dict[str, Any]]:
        return self.fetch(name, lambda: self.get(path) if self.is_manager() else [])

    def services(self) -> list[dict[str, Any]]:
        return self._manager_list("services", "/services")

    def nodes(self) -> list[dict[str, Any]]:
        return self._manager_list("nodes", "/nodes")

    def secrets(self) -> list[dict[str, Any]]:
        return self._manager_list("secrets", "/secrets")

    def swarm(self) -> dict[str, Any] | None:
        return self.fetch("swarm", lambda: self.get("/swarm") if self.is_manager() else None)

    def _inspect_all(self, list_path: str, inspect_path: str) -> list[dict[str, Any]]:
        """List, then inspect each object concurrently. Objects gone in between are left out."""
        from urllib.parse import quote

        listed = self.get(list_path) or []
        ids = [x["Id"] for x in listed]

        def one(oid: str) -> dict[str, Any] | None:
            try:
                return self._raw.get(inspect_path.format(quote(oid, safe="")))  # type: ignore[union-attr]
            except ApiError as e:
                if e.status == 404:
                    return None
                raise

        if len(ids) <= 2:
            found = [one(i) for i in ids]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=INSPECT_WORKERS) as pool:
                found = list(pool.map(one, ids))
        return [x for x in found if x is not None]

    def api(self):
        """The low-level APIClient (docker.APIClient) for writes; imports the Docker SDK."""
        return self._client().api


def negotiate_api_version(version: Any, env: dict[str, str] | None = None) -> str:
    """The API version to speak: ``$DOCKER_API_VERSION`` if set, else the engine's ``ApiVersion``
    (from its ``/version`` answer), else "" (unversioned paths)."""
    env = os.environ if env is None else env
    pinned = (env.get("DOCKER_API_VERSION") or "").strip().lstrip("v")
    if pinned and _is_api_version(pinned):
        return pinned
    api = str((version or {}).get("ApiVersion") or "") if isinstance(version, dict) else ""
    return api if _is_api_version(api) else ""


def _is_api_version(text: str) -> bool:
    major, dot, minor = text.partition(".")
    return bool(dot) and major.isdigit() and minor.isdigit()


def _is_connection_error(e: Exception) -> bool:
    if isinstance(e, ApiError):  # the engine answered
        return False
    if isinstance(e, OSError):  # refused, no such socket, timed out, reset
        return True
    text = f"{type(e).__name__} {e}".lower()
    return any(w in text for w in ("connection", "timeout", "timed out", "refused", "no such file", "not found"))


def _reason(e: Exception) -> str:
    if isinstance(e, (TimeoutError,)) or type(e).__name__ in ("timeout", "TimeoutError"):
        return "timed out (no answer within the timeout)"
    if isinstance(e, FileNotFoundError):
        return "not reachable: no socket at that path (is dockerd running?)"
    if isinstance(e, ConnectionRefusedError):
        return "not reachable: connection refused (is dockerd running?)"
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):  # incl. http.client.RemoteDisconnected
        return "not reachable: the engine dropped the connection (did dockerd stop?)"
    if isinstance(e, ApiError):
        return str(e)
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "Connection refused" in text or "FileNotFoundError" in text or "No such file" in text:
        return "not reachable (is dockerd running?)"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    if "Permission denied" in text:
        return "permission denied on the socket"
    return text[:200]
