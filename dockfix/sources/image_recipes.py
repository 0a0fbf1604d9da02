"""How each image we know takes a password from a file instead of an environment variable.

Many official images run an entrypoint that, for some variables, also accepts ``<VAR>_FILE``
naming a file whose content is the value (the "file_env" convention of the mysql, mariadb,
postgres, mongo, wordpress and nextcloud images). Grafana does the same with a double
underscore (``GF_..__FILE``) for every ``GF_`` setting. The MySQL exporter reads no such
variable: it reads a MySQL client option file (``[client]`` user/password/host/port) named by
``--config.my-cnf``.

:func:`recipe_for` answers, for one image and one variable: replace the variable by
``<VAR><suffix>`` (:class:`FileEnv`), use the exporter's option file (:class:`MyCnf`), or
nothing known (None): then the secret is mounted, a ``<VAR>_FILE`` pointer is set, and the
person applying the fix is told that the application itself must read the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Image repository -> variables its entrypoint also accepts as ``<VAR>_FILE``.
FILE_ENV: dict[str, frozenset[str]] = {
    "mysql": frozenset({"MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "MYSQL_USER", "MYSQL_DATABASE",
                        "MYSQL_ROOT_HOST"}),
    "mariadb": frozenset({"MARIADB_ROOT_PASSWORD", "MARIADB_PASSWORD", "MARIADB_USER", "MARIADB_DATABASE",
                          "MARIADB_ROOT_HOST", "MARIADB_REPLICATION_PASSWORD", "MYSQL_ROOT_PASSWORD",
                          "MYSQL_PASSWORD", "MYSQL_USER", "MYSQL_DATABASE", "MYSQL_ROOT_HOST"}),
    "postgres": frozenset({"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_INITDB_ARGS"}),
    "mongo": frozenset({"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"}),
    "wordpress": frozenset({"WORDPRESS_DB_HOST", "WORDPRESS_DB_USER", "WORDPRESS_DB_PASSWORD",
                            "WORDPRESS_DB_NAME", "WORDPRESS_AUTH_KEY", "WORDPRESS_SECURE_AUTH_KEY",
                            "WORDPRESS_LOGGED_IN_KEY", "WORDPRESS_NONCE_KEY", "WORDPRESS_AUTH_SALT",
                            "WORDPRESS_SECURE_AUTH_SALT", "WORDPRESS_LOGGED_IN_SALT", "WORDPRESS_NONCE_SALT"}),
    "nextcloud": frozenset({"MYSQL_PASSWORD", "MYSQL_USER", "MYSQL_DATABASE", "POSTGRES_PASSWORD",
                            "POSTGRES_USER", "POSTGRES_DB", "NEXTCLOUD_ADMIN_USER", "NEXTCLOUD_ADMIN_PASSWORD",
                            "REDIS_HOST_PASSWORD", "SMTP_PASSWORD", "OBJECTSTORE_S3_KEY", "OBJECTSTORE_S3_SECRET"}),
}

#: Images whose every variable with a prefix accepts a file variant with another suffix.
PREFIX_FILE_ENV: dict[str, tuple[str, str]] = {
    "grafana/grafana": ("GF_", "__FILE"),
    "grafana/grafana-oss": ("GF_", "__FILE"),
    "grafana/grafana-enterprise": ("GF_", "__FILE"),
}

#: The MySQL exporter: variables that carry its password, read from an option file instead.
MYCNF_IMAGES = frozenset({"prom/mysqld-exporter", "prometheus/mysqld-exporter"})
MYCNF_VARS = frozenset({"DATA_SOURCE_NAME", "MYSQLD_EXPORTER_PASSWORD"})


@dataclass(frozen=True)
class FileEnv:
    """Replace ``VAR`` by ``VAR<suffix>: /run/secrets/<name>``."""

    suffix: str = "_FILE"

    def file_var(self, var: str) -> str:
        return var + self.suffix


@dataclass(frozen=True)
class MyCnf:
    """Write a ``[client]`` option file as the secret and pass ``--config.my-cnf=<path>``."""

    flag: str = "--config.my-cnf"


Recipe = FileEnv | MyCnf


def repository(image: str | None) -> str:
    """``docker.io/library/mysql:8.0@sha256:..`` -> ``mysql``; ``quay.io/prometheus/x:v1`` -> ``prometheus/x``."""
    if not image:
        return ""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts).lower()


def recipe_for(image: str | None, var: str) -> Recipe | None:
    repo = repository(image)
    if var in FILE_ENV.get(repo, ()):
        return FileEnv("_FILE")
    prefix = PREFIX_FILE_ENV.get(repo)
    if prefix and var.startswith(prefix[0]):
        return FileEnv(prefix[1])
    if repo in MYCNF_IMAGES and var in MYCNF_VARS:
        return MyCnf()
    return None


# ---------------------------------------------------------------------- who reads the file
#: Image repository -> (uid, gid) of the process that reads the secret file. Entrypoints that
#: start as root and drop privileges (mysql, mariadb, postgres, mongo: ``gosu`` to 999) read the
#: ``_FILE`` again after the switch; WordPress and Nextcloud read it from PHP as www-data (33);
#: grafana runs as 472 with group 0; the exporter's Dockerfile says ``USER nobody`` (65534).
IMAGE_USERS: dict[str, tuple[int, int]] = {
    "prom/mysqld-exporter": (65534, 65534),
    "prometheus/mysqld-exporter": (65534, 65534),
    "grafana/grafana": (472, 0),
    "grafana/grafana-oss": (472, 0),
    "grafana/grafana-enterprise": (472, 0),
    "wordpress": (33, 33),
    "nextcloud": (33, 33),
    "postgres": (999, 999),
    "mysql": (999, 999),
    "mariadb": (999, 999),
    "mongo": (999, 999),
}


def parse_user(user: str | None) -> tuple[int, int | None] | None:
    """``"65534:65534"`` -> (65534, 65534); ``"472"`` -> (472, None); ``""`` -> (0, 0) (Docker's
    default user is root); a user or group given by name -> None (only the image's /etc/passwd
    could say)."""
    if user is None:
        return None
    u = str(user).strip()
    if not u:
        return (0, 0)
    name, _, group = u.partition(":")
    if not name.isdigit() or (group and not group.isdigit()):
        return None
    return (int(name), int(group) if group else None)


def image_user(image: str | None, compose_user: str | None = None, config_user: str | None = None
               ) -> tuple[int, int] | None:
    """The (uid, gid) the container reads its secret files as: the service's ``user:`` when
    numeric, else the image's ``Config.User`` from the engine when known and numeric, else this
    table; None when no one can tell (a user given by name, an image dockfix does not know)."""
    for u in (compose_user, config_user):
        if u is None:
            continue
        got = parse_user(u)
        if got is None:
            return None
        uid, gid = got
        if gid is None:  # a uid alone: its primary group is in the image's /etc/group; the table knows ours
            known = IMAGE_USERS.get(repository(image))
            gid = known[1] if known and known[0] == uid else uid
        return (uid, gid)
    return IMAGE_USERS.get(repository(image))


def can_read(uid: int, gid: int, st_uid: int, st_gid: int, mode: int) -> bool:
    """Whether a process of ``uid:gid`` (no supplementary groups) may read a file of that owner and mode."""
    if uid == 0:
        return True
    if uid == st_uid:
        return bool(mode & 0o400)
    if gid == st_gid:
        return bool(mode & 0o040)
    return bool(mode & 0o004)


# ---------------------------------------------------------------------- the exporter's option file
_DSN = re.compile(r"^(?P<user>[^:@/]*)(?::(?P<pw>.*))?@(?:(?P<net>tcp|unix)?\((?P<addr>[^)]*)\))?/(?P<rest>.*)\Z", re.S)
#: Characters the exporter's ini reader would not keep literally in a value.
_CNF_UNSAFE = re.compile(r"[$\n\r\"'`\\]|^\s|\s$")


class RecipeError(ValueError):
    """The value cannot be carried by the recipe (message never contains the value)."""


def _exporter_version(image: str | None) -> tuple[int, int]:
    """The exporter's version from its tag (``v0.15.1`` -> (0, 15)); an unknown tag counts as the newest."""
    tag = (image or "").split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    m = re.match(r"v?(\d+)\.(\d+)", tag)
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


def mycnf(var: str, value: str, image: str | None = None) -> bytes:
    """The ``[client]`` option file for the exporter holding what ``var`` held.

    ``DATA_SOURCE_NAME`` (``user:password@(host:port)/``) gives user, password, host and port;
    ``MYSQLD_EXPORTER_PASSWORD`` gives only the password (the user and address stay in the
    ``--mysqld.username`` / ``--mysqld.address`` flags, which the exporter uses when the file
    has none). DSN parameters the exporter's option file knows (``tls``, ``allowCleartextPasswords``,
    by the exporter's version in ``image``) are carried over; anything else raises RecipeError
    naming it."""
    fields: list[tuple[str, str]] = []
    if var == "DATA_SOURCE_NAME":
        m = _DSN.match(value)
        if not m or m.group("pw") is None:
            raise RecipeError("DATA_SOURCE_NAME is not of the form user:password@(host:port)/")
        rest = m.group("rest") or ""
        db, _, query = rest.partition("?")
        carried: list[tuple[str, str]] = []
        names = ["the database name (the exporter's option file has none)"] if db else []
        version = _exporter_version(image)
        for p in (q for q in query.split("&") if q):
            key, _, val = p.partition("=")
            if key == "tls" and version >= (0, 15):
                carried.append(("tls", val))
            elif key == "allowCleartextPasswords" and val in ("true", "1") and version >= (0, 19):
                carried.append(("enable-cleartext-plugin", "true"))
            else:
                names.append(f"parameter {key}")
        if names:
            raise RecipeError(f"DATA_SOURCE_NAME carries {', '.join(names)}, which the exporter's [client] option "
                              "file cannot carry (it knows user, password, host, port, socket, ssl-ca/ssl-cert/"
                              "ssl-key, tls from v0.15 and enable-cleartext-plugin from v0.19)")
        fields.append(("user", m.group("user")))
        fields.append(("password", m.group("pw")))
        addr = m.group("addr") or ""
        if m.group("net") == "unix":
            fields.append(("socket", addr))
        elif addr:
            host, _, port = addr.rpartition(":") if re.search(r":\d+$", addr) else (addr, "", "")
            fields.append(("host", host.strip("[]")))
            if port:
                fields.append(("port", port))
    else:
        fields.append(("password", value))
        carried = []
    fields.extend(carried)
    for key, v in fields:
        if _CNF_UNSAFE.search(v):
            raise RecipeError(f"the {key} contains characters an option file cannot carry as written "
                              "($, quotes, backslash, line breaks or surrounding blanks)")
    return ("[client]\n" + "".join(f"{k}={v}\n" for k, v in fields if v != "")).encode()
