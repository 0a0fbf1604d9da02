"""Which variable names hold secrets, and which values carry credentials.

Used by the ``env-password`` check and the secrets fix, so both agree on what a secret is.
A name is split into words (``DB_ROOT_PASSWORD`` -> DB ROOT PASSWORD, ``dbPassword`` -> DB
PASSWORD); it is a secret when a word says so (PASSWORD, SECRET, TOKEN, ...) and no later word
says the variable only points at or describes the secret (``*_FILE``, ``*_PATH``, ``*_URL``,
``*_LENGTH``, ...), and no word says it is a switch (``MYSQL_ALLOW_EMPTY_PASSWORD``,
``MYSQL_RANDOM_ROOT_PASSWORD``).
"""

from __future__ import annotations

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
                 "PROVIDER", "ISSUER", "AUDIENCE", "PREFIX", "FORMAT", "MODE", "METHOD", "HASHER"}
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


def has_url_credentials(value: str) -> bool:
    """True when ``value`` carries a password inside a URL or DSN (``postgres://u:p@db/x``,
    ``u:p@tcp(db)/x``, ``Server=db;Password=p``)."""
    if not value or not isinstance(value, str):
        return False
    return bool(_URL_CRED.search(value) or _GO_DSN.search(value) or _KV_CRED.search(value))
