"""The one secret detector: which variable names hold secrets, which values carry credentials,
and how to hide them in anything dockfix shows.

Used by the scan's evidence, the fixes, diffs, plan files, error messages and the app, so that all
of them agree on what a secret is.
A name is split into words (``DB_ROOT_PASSWORD`` -> DB ROOT PASSWORD, ``dbPassword`` -> DB
PASSWORD); it is a secret when a word says so (PASSWORD, SECRET, TOKEN, ...) and no later word
says the variable only points at or describes the secret (``*_FILE``, ``*_PATH``, ``*_URL``,
``*_LENGTH``, ...), and no word says it is a switch (``MYSQL_ALLOW_EMPTY_PASSWORD``,
``MYSQL_RANDOM_ROOT_PASSWORD``).
"""

from __future__ import annotations

import os
import re

#: A word equal to, ending with, or (plural) starting with one of these marks a secret.
SECRET_WORDS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "APIKEY",
                "PRIVATEKEY", "SECRETKEY", "ENCRYPTIONKEY", "SIGNINGKEY", "AUTHKEY", "MASTERKEY")
#: Two words in a row that mark a secret (``API_KEY``, ``PRIVATE_KEY``, ...).
SECRET_PAIRS = {("API", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY"), ("ENCRYPTION", "KEY"),
                ("SIGNING", "KEY"), ("AUTH", "KEY"), ("MASTER", "KEY"), ("SESSION", "KEY"),
                ("LICENSE", "KEY"), ("ACCESS", "TOKEN"), ("ADMIN", "PASS"), ("ROOT", "PASS")}
#: Words that are secrets only as the last word: ``DB_PWD``, ``SMTP_PASS`` (but not ``PWD``).
SUFFIX_WORDS = ("PWD", "PASS", "PW", "CREDS")
#: A later word saying the variable points at or describes a secret rather than holding it.
POINTER_WORDS = {"FILE", "FILES", "PATH", "DIR", "FILENAME", "LOCATION", "LENGTH", "LEN", "MIN", "MAX",
                 "POLICY", "EXPIRY", "EXPIRES", "EXPIRATION", "TTL", "LIFETIME", "TIMEOUT", "ENABLED",
                 "ENABLE", "DISABLED", "DISABLE", "REQUIRED", "URL", "URI", "ENDPOINT", "HEADER",
                 "NAME", "TYPE", "ALGORITHM", "ALGO", "ROTATION", "HOST", "PORT", "USER", "USERNAME",
                 "PROVIDER", "ISSUER", "AUDIENCE", "PREFIX", "FORMAT", "MODE", "METHOD", "HASHER",
                 "BACKEND", "STORE", "DRIVER", "ENGINE", "KIND", "SOURCE", "VERSION", "ID", "REF"}
#: Words saying the variable is a switch about a secret.
SWITCH_WORDS = {"ALLOW", "RANDOM", "EMPTY", "GENERATE", "SKIP", "NO", "RESET", "REQUIRE", "FORCE", "USE",
                "DISABLE", "ENABLE", "IGNORE"}

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def words_of(name: str) -> list[str]:
    """``DB_ROOT_PASSWORD`` / ``dbRootPassword`` / ``db.root-password`` -> [DB, ROOT, PASSWORD]."""
    out = []
    for chunk in re.split(r"[^A-Za-z0-9]+", name):
        out.extend(w.upper() for w in _CAMEL.findall(chunk))
    return out


def _secret_word(w: str) -> bool:
    for s in SECRET_WORDS:
        if w == s or w.endswith(s) or (w.startswith(s) and w[len(s):] in ("S", "ES")):
            return True
    return False


def is_secret_name(var: str) -> bool:
    """True when an environment variable of this name would normally hold a secret value."""
    words = words_of(var)
    if not words:
        return False
    hit = None
    for i, w in enumerate(words):
        if _secret_word(w):
            hit = i
            break
        if i + 1 < len(words) and (w, words[i + 1]) in SECRET_PAIRS:
            hit = i + 1
            break
        if i == len(words) - 1 and i > 0 and w in SUFFIX_WORDS:
            hit = i
            break
    if hit is None:
        return False
    if any(w in POINTER_WORDS for w in words[hit + 1:]):
        return False
    if any(w in SWITCH_WORDS for w in words[:hit]):
        return False
    return True


# scheme://user:password@host  (the password may be empty: then it is not a credential)
_URL_CRED = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^\s:/@?#]*):(?P<pw>[^\s@/?#]+)@")
# Go/MySQL DSN without a scheme: user:password@tcp(host:3306)/db
_GO_DSN = re.compile(r"(?:^|[\s'\"])[^\s:/@'\"]+:(?P<pw>[^\s@'\"]+)@(?:tcp|unix|udp)?\(")
# key=value connection strings: "Server=db;User Id=sa;Password=x;" / "host=db password=x" (libpq)
_KV_CRED = re.compile(r"(?i)(?:^|[;\s])\s*(?:password|pwd|passwd)\s*=\s*(?P<pw>'[^']+'|\"[^\"]+\"|[^;\s'\"]+)")


# ---------------------------------------------------------------------- values
_NON_SECRET_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "nil", "disabled",
                               "enabled", "auto", "default", "required", "optional"})
_HOSTNAME = re.compile(r"(?=.*[a-z])[a-z0-9](?:[a-z0-9-]{0,62})(?:\.[a-z0-9-]{1,63})+(?::\d{1,5})?")
_SELECTOR = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    import math

    if not value:
        return 0.0
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def looks_like_token(value: str) -> bool:
    """A random-looking token: a run of 16+ characters without separators that mixes capitals,
    small letters and digits with high entropy (base64 keys, API tokens). Identifiers made of words
    (``db_MYSQL_PASSWORD-3f9a1c``, ``SomeCamelCaseName``), hex digests, UUIDs, paths and versions
    do not look like that."""
    v = value.strip().strip("'\"")
    if len(v) < 16 or len(v) > 512 or any(c.isspace() for c in v):
        return False
    if v.startswith(("/", "./", "~/")) or "://" in v:
        return False
    for seg in re.split(r"[_.~\-/:@]+", v):
        seg = seg.rstrip("=")
        if len(seg) >= 16 and re.search(r"[a-z]", seg) and re.search(r"[A-Z]", seg) and re.search(r"[0-9]", seg) \
                and entropy(seg) >= 3.5:
            return True
    return False


def looks_non_secret(value: str | None) -> bool:
    """A value that, whatever its variable is called, is a setting and not a secret: a switch
    (``true``, ``none``), a path, a hostname, or a short lowercase selector word (``vault``,
    ``file``, ``aws-kms``) with no digit or capital. Anything with the look of a password — capitals,
    digits mixed with letters, symbols, or high entropy — is not excused."""
    if value is None:
        return False
    v = value.strip()
    if not v:
        return True
    low = v.lower()
    if low in _NON_SECRET_WORDS:
        return True
    if v.startswith(("/", "./", "../", "~/")) and not any(c.isspace() for c in v) and "@" not in v:
        return True
    if _HOSTNAME.fullmatch(v) and not has_url_credentials(v):
        return True
    if _SELECTOR.fullmatch(v) and len(v) <= 16 and not re.search(r"\d", v) and entropy(v) < 3.2:
        return True
    return False


def has_url_credentials(value: str) -> bool:
    """True when ``value`` carries a password inside a URL or DSN (``postgres://u:p@db/x``,
    ``u:p@tcp(db)/x``, ``Server=db;Password=p``)."""
    if not value or not isinstance(value, str):
        return False
    return bool(_URL_CRED.search(value) or _GO_DSN.search(value) or _KV_CRED.search(value))


# ---------------------------------------------------------------------- masking what is shown
def secret_text(value: str | bytes) -> str:
    """What is shown instead of a secret value: its size only."""
    n = len(value) if isinstance(value, bytes) else len(value.encode())
    return f"<secret, {n} bytes>"


_ASSIGN = re.compile(r"^(\s*[-+ ]?\s*(?:export\s+)?\"?)([A-Za-z_][A-Za-z0-9_.-]*)(\"?\s*[=:]\s*)(.+)$")
# by place: a password after the option that takes one (redis-server --requirepass X, --password=X,
# mysql -pX), basic-auth users in labels (traefik's basicauth.users=user:$$apr1$...), an
# Authorization: Basic header
_FLAG_CRED = re.compile(r"(?i)(?:^|[\s'\"\[,])--?(?:requirepass|masterauth|password|passwd|pass|token|secret|"
                        r"api-key|auth-token)(?:\s+|\s*=\s*)['\"]?(?P<pw>[^\s'\",\]]+)")
_MYSQL_P = re.compile(r"(?i)\b(?:mysql|mysqladmin|mysqldump|mariadb|mariadb-admin|mariadb-dump|mysqlcheck)\b[^\n]*?"
                      r"\s-p(?P<pw>[^\s'\",\]]+)")
_BASIC_AUTH = re.compile(r"(?i)basic-?auth[\w.\-]*\s*[=:]\s*['\"]?[^\s:'\"=]+:(?P<pw>[^\s'\",]+)")
_AUTH_HEADER = re.compile(r"(?i)authorization\s*[:=]\s*['\"]?(?:basic|bearer|token)\s+(?P<pw>[^\s'\",]+)")
_PLACE_CRED = (_FLAG_CRED, _MYSQL_P, _BASIC_AUTH, _AUTH_HEADER)
_CRED_SPANS = (_URL_CRED, _GO_DSN, _KV_CRED, *_PLACE_CRED)
#: Options whose next word (in a YAML list, a separate item) is a password.
PASSWORD_FLAGS = frozenset({"--requirepass", "--masterauth", "--password", "--passwd", "--pass", "--token",
                            "--secret", "--api-key", "--auth-token", "-a"})


def has_placed_credentials(value: str) -> bool:
    """A password given by its place: after ``--requirepass``, ``mysql -p``, in basic-auth users."""
    return bool(value) and any(p.search(value) for p in _PLACE_CRED)


def mask_credentials(text: str) -> str:
    """``text`` with the password of every URL, DSN or ``password=`` pair replaced by ``<secret>``."""
    for pat in _CRED_SPANS:
        text = pat.sub(lambda m: m.group(0)[:m.start("pw") - m.start(0)] + "<secret>"
                       + m.group(0)[m.end("pw") - m.start(0):], text)
    return _TOKEN.sub(lambda m: "<secret>" if looks_like_token(m.group(0)) else m.group(0), text)


_TOKEN = re.compile(r"[A-Za-z0-9+/_\-.~!%^*]{16,}=*")


def mask_line(line: str) -> str:
    """Hide a secret value in a ``NAME=value`` / ``"name": value`` line, keeping the name."""
    m = _ASSIGN.match(line)
    if m and ((is_secret_name(m.group(2).strip('"')) and not looks_non_secret(m.group(4).strip().strip("'\","))) or
              has_url_credentials(m.group(4))):
        return f"{m.group(1)}{m.group(2)}{m.group(3)}{secret_text(m.group(4))}"
    return mask_credentials(line)


def mask_env_entry(entry: str) -> str:
    """``NAME=value`` of a container or service environment, with a secret value hidden."""
    name, eq, value = entry.partition("=")
    if eq and (is_secret_name(name) or has_url_credentials(value)):
        return f"{name}={secret_text(value)}"
    return entry


def has_secret_lines(data: bytes | None) -> bool:
    if not data:
        return False
    text = data.decode("utf-8", errors="replace")
    return any(mask_line(ln) != ln for ln in text.splitlines())


_BARE_DSN = re.compile(r"^[^\s:/@]+:[^\s@]+@(?:tcp|unix)?\(")


def _creds(value: str) -> bool:
    return has_url_credentials(value) or bool(_BARE_DSN.search(value)) or has_placed_credentials(value) or \
        any(looks_like_token(w) for w in value.split())


def mask_yaml(text: str, path: str = "yaml") -> str | None:
    """``text`` with every secret-looking value replaced by ``<secret, N bytes>``; None when it
    cannot be parsed (the caller then hides the whole file)."""
    from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

    from dockfix.model import CheckError
    from dockfix.sources.yaml_edit import YamlText, render_scalar

    try:
        yt = YamlText(text.lstrip("\ufeff"), path)
    except CheckError:
        return None
    offset = len(text) - len(text.lstrip("\ufeff"))
    spans: list[tuple[int, int, str]] = []

    def hide(node, keep: str = "") -> None:
        value = str(node.value)
        shown = keep + f"<secret, {len(value.encode()) - len(keep.encode())} bytes>"
        spans.append((node.start_mark.index, node.end_mark.index, render_scalar(shown) if keep else shown))

    seen: set[int] = set()

    def walk(n: Node, key: str | None) -> None:
        if id(n) in seen:
            return
        seen.add(id(n))
        if isinstance(n, MappingNode):
            for k, v in n.value:
                kname = str(k.value) if isinstance(k, ScalarNode) else None
                walk(v, kname)
        elif isinstance(n, SequenceNode):
            prev = None
            for v in n.value:
                if isinstance(prev, ScalarNode) and str(prev.value) in PASSWORD_FLAGS and isinstance(v, ScalarNode) \
                        and v.value not in (None, ""):
                    hide(v)
                    seen.add(id(v))
                else:
                    walk(v, None)
                prev = v
        elif isinstance(n, ScalarNode) and n.value not in (None, "") and not n.tag.endswith(":null"):
            value = str(n.value)
            if key is not None and is_secret_name(key):
                hide(n)
            elif key is None and "=" in value and is_secret_name(value.split("=", 1)[0].strip()):
                hide(n, value.split("=", 1)[0] + "=")
            elif _creds(value):
                hide(n)

    if yt.root is not None:
        walk(yt.root, None)
    for i, (start, end, rep) in enumerate(spans):  # a node hidden twice (an alias): keep one
        if any(j != i and s2 == start for j, (s2, _, _) in enumerate(spans[:i])):
            spans[i] = (start, start, "")
    body = text[offset:]
    for start, end, rep in sorted(spans, reverse=True):
        body = body[:start] + rep + body[end:]
    return text[:offset] + body


def mask_dotenv(text: str) -> str:
    """``.env`` text with every value hidden (any of them may be interpolated into a password)."""
    out = []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^(\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=\s*)(.*?)(\r?\n?)$", line)
        if m and m.group(2) and not line.lstrip().startswith("#"):
            out.append(f"{m.group(1)}{secret_text(m.group(2))}{m.group(3)}")
        else:
            out.append(line)
    return "".join(out)


def is_compose_path(path: str) -> bool:
    from dockfix.sources.compose import is_compose_name

    return is_compose_name(os.path.basename(path))


def mask_file_text(path: str, text: str) -> str | None:
    """``text`` of a file that mixes secrets with other settings (compose files, ``.env``, a
    registry's config.yml) with every secret value hidden; None for other kinds of file."""
    base = os.path.basename(path)
    if base == ".env" or base.endswith(".env"):
        return mask_dotenv(text)
    if is_compose_path(path) or base in ("config.yml", "config.yaml"):
        return mask_yaml(text, path)
    return None
