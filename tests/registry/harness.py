#!/usr/bin/python3
"""Real registries on loopback for the `docker://` tests (see README.md beside this file).

    /usr/bin/python3 tests/registry/harness.py DIR [--remove-dir-on-exit]

DIR is an empty directory. Starts three Debian `docker-registry` (distribution 2.8)
instances (`plain` HTTP anonymous, `basic` HTTPS + htpasswd, `token` HTTP + token auth),
a token service and a misbehaving proxy in front of `plain`, seeds the registries with
`skopeo copy` from the committed images under testdata/, writes DIR/env.json, prints
READY, and then runs until its standard input is closed. Then it stops everything it
started (and with --remove-dir-on-exit removes DIR).

Python standard library plus, if present, python3-cryptography (else `openssl dgst`).
"""

import base64
import concurrent.futures
import ctypes
import datetime
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "flatten-test"
ISSUER = "flatten-test-issuer"
USERS_BASIC = {"alice": "wonderland"}  # the `basic` registry's htpasswd
USERS_TOKEN = {"bob": "builder"}  # the token service's
PROXY_USER = ("carol", "secret")  # the proxy's `redirect` behaviour
PLAIN_REFS = ["whiteout-file", "opaque-dir", "hardlink-layer", "symlinks", "type-change"]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([
    OCI_MANIFEST,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------------------
# Children: every process we start, killed (whole process group) on any way out.

CHILDREN = []
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG: the child gets SIGKILL when the harness dies, even by SIGKILL.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def spawn(argv, log_path):
    log = open(log_path, "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, preexec_fn=_die_with_parent, cwd=ROOT)
    log.close()
    CHILDREN.append(p)
    return p


_cleaned = False


def cleanup():
    global _cleaned
    if _cleaned:
        return
    _cleaned = True
    for p in CHILDREN:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 3
    for p in CHILDREN:
        try:
            p.wait(max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()


def _on_signal(signum, _frame):
    cleanup()
    os._exit(128 + signum)


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(data[-lines:])


def run(argv, what, **kw):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, cwd=ROOT, **kw)
    if p.returncode != 0:
        raise Failure(f"{what} failed (exit {p.returncode}): {' '.join(argv)}\n"
                      + p.stderr.decode("utf-8", "replace")[-3000:])
    return p.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# Certificates and keys (openssl CLI).

def make_certs(d):
    certs = os.path.join(d, "certs")
    os.makedirs(certs)
    ca_crt, ca_key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
         "-keyout", ca_key, "-out", ca_crt, "-subj", "/CN=flatten test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], "openssl (CA)")
    csr = os.path.join(d, "server.csr")
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
         "-keyout", os.path.join(d, "server.key"), "-out", csr, "-subj", "/CN=127.0.0.1"],
        "openssl (server key)")
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-set_serial", "0x" + uuid.uuid4().hex[:16], "-days", "30", "-sha256",
         "-extfile", ext, "-out", os.path.join(d, "server.crt")], "openssl (server cert)")
    shutil.copy(ca_crt, os.path.join(certs, "ca.crt"))
    # Token signing: RSA key and a self-signed cert, the registry's rootcertbundle.
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
         "-keyout", os.path.join(d, "token.key"), "-out", os.path.join(d, "token.crt"),
         "-subj", "/CN=flatten test token signer"], "openssl (token key)")
    der = run(["openssl", "x509", "-in", os.path.join(d, "token.crt"), "-outform", "DER"],
              "openssl (token cert DER)")
    return base64.b64encode(der).decode()


def make_htpasswd(d):
    path = os.path.join(d, "htpasswd")
    lines = []
    for user, password in USERS_BASIC.items():
        if shutil.which("htpasswd"):
            out = run(["htpasswd", "-nbB", "-C", "5", user, password], "htpasswd")
            lines.append(out.decode().strip())
        else:
            try:
                import bcrypt
            except ImportError:
                raise Failure("need bcrypt hashes: apt-get install apache2-utils (or python3-bcrypt)")
            h = bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()
            lines.append(f"{user}:{h}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------
# JWT for the token service.

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Signer:
    def __init__(self, key_path, x5c):
        self.key_path = key_path
        self.x5c = x5c
        try:
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding
            with open(key_path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            self._sign = lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        except ImportError:
            self._sign = self._openssl

    def _openssl(self, data):
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key_path],
                              input=data, capture_output=True, check=True).stdout

    def token(self, sub, aud, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": sub, "aud": aud, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(claims, separators=(",", ":")).encode()))
        return signing_input + "." + b64url(self._sign(signing_input.encode()))


# ---------------------------------------------------------------------------------------
# Small HTTP helpers.

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def basic_credentials(header):
    """(user, password) of an `Authorization: Basic` header, or None if not Basic/malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except Exception:
        return None
    return (user, password) if sep else None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flatten-test"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=(), content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


def registry_error(code, message):
    return {"errors": [{"code": code, "message": message, "detail": None}]}


# ---------------------------------------------------------------------------------------
# Token service (Docker token protocol).

class TokenState:
    def __init__(self, signer):
        self.signer = signer
        self.lock = threading.Lock()
        self.stats = {"total": 0, "users": {}, "refused": 0, "requests": []}

    def count(self, user, scopes, granted):
        with self.lock:
            self.stats["total"] += 1
            if user is None:
                self.stats["refused"] += 1
            else:
                self.stats["users"][user] = self.stats["users"].get(user, 0) + 1
            reqs = self.stats["requests"]
            reqs.append({"user": user, "scopes": scopes, "granted": granted})
            del reqs[:-200]


def parse_scopes(values):
    scopes = []
    for v in values:
        scopes.extend(s for s in v.split(" ") if s)
    return scopes


def grant(user, scopes):
    access = []
    for scope in scopes:
        typ, sep, rest = scope.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not sep or not sep2 or not name:
            continue
        wanted = [a for a in actions.split(",") if a]
        if user == "bob":
            got = wanted
        elif typ == "repository" and name.startswith("public/") and "pull" in wanted:
            got = ["pull"]
        else:
            got = []
        if got:
            access.append({"type": typ, "name": name, "actions": got})
    return access


class TokenHandler(Handler):
    state = None  # TokenState

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/stats":
            with self.state.lock:
                return self.reply(200, json.dumps(self.state.stats))
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        q = urllib.parse.parse_qs(url.query)
        self.issue(q.get("service", [SERVICE])[0], parse_scopes(q.get("scope", [])),
                   self.headers.get("Authorization"))

    def do_POST(self):
        # OAuth2 password grant (what some clients try first when they have credentials).
        url = urllib.parse.urlsplit(self.path)
        form = urllib.parse.parse_qs(self.read_body().decode("utf-8", "replace"))
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        if form.get("grant_type", [""])[0] != "password":
            return self.reply(400, {"error": "unsupported_grant_type"})
        user = form.get("username", [""])[0]
        password = form.get("password", [""])[0]
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.issue(form.get("service", [SERVICE])[0], parse_scopes(form.get("scope", [])), auth)

    def issue(self, service, scopes, authorization):
        user = "anonymous"
        if authorization is not None:
            creds = basic_credentials(authorization)
            if creds is None or USERS_TOKEN.get(creds[0]) != creds[1]:
                self.state.count(None, scopes, [])
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                    "message": "wrong user name or password"}]},
                                  headers=[("WWW-Authenticate", f'Basic realm="{SERVICE}"')])
            user = creds[0]
        access = grant(user, scopes)
        self.state.count(user, scopes, access)
        token = self.state.signer.token("" if user == "anonymous" else user, service, access)
        issued = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.reply(200, {"token": token, "access_token": token, "expires_in": 300,
                         "issued_at": issued})


# ---------------------------------------------------------------------------------------
# The misbehaving proxy in front of `plain`.

MODES = {"ok", "corrupt", "corrupt-manifest", "drop-once", "drop-always", "no-range-drop-once",
         "slow-429", "429", "500", "long", "redirect", "redirect-loop", "redirect-ftp",
         "big-manifest"}
PASS_HEADERS = ("content-type", "docker-content-digest", "docker-distribution-api-version",
                "content-range", "accept-ranges", "etag", "www-authenticate", "location")


class ProxyState:
    def __init__(self, log_path):
        self.upstream = None  # "127.0.0.1:P"
        self.port = None
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1)
        self.seen = {}  # (mode, key) -> count
        self.objects = {}  # digest -> upstream repository, for /_objects/

    def bump(self, key):
        with self.lock:
            n = self.seen.get(key, 0)
            self.seen[key] = n + 1
            return n

    def record(self, line):
        with self.lock:
            self.log.write(line + "\n")


def flip(body, at):
    b = bytearray(body)
    b[at] ^= 0x01
    return bytes(b)


def flip_manifest(body):
    """Changes one hex digit of the last digest in a manifest: same length, still JSON."""
    i = body.rfind(b'"sha256:')
    if i < 0:
        return flip(body, len(body) // 2) if body else body
    at = i + 8 + 10
    c = body[at:at + 1]
    new = b"1" if c != b"1" else b"2"
    return body[:at] + new + body[at + 1:]


class ProxyHandler(Handler):
    state = None  # ProxyState

    def do_GET(self):
        self.handle_request()

    def do_HEAD(self):
        self.handle_request()

    def do_POST(self):
        self.read_only()

    do_PUT = do_PATCH = do_DELETE = do_POST

    def read_only(self):
        self.read_body()
        self.reply(405, registry_error("UNSUPPORTED", "the test proxy is read-only"))

    def handle_request(self):
        s = self.state
        auth = self.headers.get("Authorization")
        rng = self.headers.get("Range")
        s.record(f"{self.command} {self.path} auth={'yes' if auth else 'no'} range={rng or '-'}")
        path, _, query = self.path.partition("?")
        if path.startswith("/_objects/"):
            return self.objects(path[len("/_objects/"):], auth, rng)
        api = [("Docker-Distribution-API-Version", "registry/2.0")]
        if path in ("/v2", "/v2/"):
            # Open to anyone; credentials, when sent, must be carol's (the `redirect` mode's).
            if auth is not None and basic_credentials(auth) != PROXY_USER:
                return self.challenge()
            return self.reply(200, {}, headers=api)
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "v2" or parts[2] not in MODES:
            return self.reply(404, registry_error("NAME_UNKNOWN",
                                                  "unknown proxy behaviour (see tests/registry/README.md)"),
                              headers=api)
        mode = parts[2]
        rest = "/".join(parts[3:])
        m = re.match(r"^(.+)/(manifests|blobs|tags)/(.+)$", rest)
        kind = m.group(2) if m else None
        is_blob = kind == "blobs" and not m.group(3).startswith("uploads")
        blob_get = is_blob and self.command == "GET"

        if mode == "redirect" and basic_credentials(auth) != PROXY_USER:
            return self.challenge()
        if mode == "slow-429" and s.bump(("slow-429", path)) < 2:
            return self.too_many()
        if mode == "429" and blob_get:
            return self.too_many()
        if mode == "500" and blob_get:
            return self.reply(503, registry_error("UNAVAILABLE", "service unavailable"), headers=api)
        if blob_get and mode == "redirect":
            digest = m.group(3)
            with s.lock:
                s.objects[digest] = m.group(1)
            return self.redirect(f"http://localhost:{s.port}/_objects/{digest}?sig=x")
        if blob_get and mode == "redirect-loop":
            host = self.headers.get("Host") or f"127.0.0.1:{s.port}"
            return self.redirect(f"http://{host}{self.path}")
        if blob_get and mode == "redirect-ftp":
            return self.redirect("ftp://127.0.0.1/x")

        forward_range = rng if (is_blob and mode != "no-range-drop-once") else None
        upstream_path = "/v2/" + rest + ("?" + query if query else "")
        status, headers, body = self.upstream(upstream_path, forward_range)
        ok = status in (200, 206)
        cut = False
        if blob_get and ok:
            digest = m.group(3)
            if mode == "corrupt" and body:
                body = flip(body, len(body) // 2)
            elif mode == "long":
                body = body + b"\0" * 100
            elif mode in ("drop-once", "no-range-drop-once"):
                cut = s.bump((mode, digest)) == 0
            elif mode == "drop-always":
                cut = True
        if kind == "manifests" and self.command == "GET" and ok and mode == "corrupt-manifest":
            body = flip_manifest(body)
        if kind == "manifests" and self.command == "GET" and ok and mode == "big-manifest":
            # Valid JSON past the 4 MiB a client should read: padded with an annotation.
            m = json.loads(body)
            m.setdefault("annotations", {})["padding"] = "x" * (5 << 20)
            body = json.dumps(m).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "docker-content-digest"]
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    def upstream(self, path, rng):
        conn = http.client.HTTPConnection(self.state.upstream, timeout=60)
        headers = {"Accept": ", ".join(self.headers.get_all("Accept") or ["*/*"])}
        if rng:
            headers["Range"] = rng
        try:
            conn.request(self.command, path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            kept = [(k, v) for k, v in r.getheaders() if k.lower() in PASS_HEADERS]
            if self.command == "HEAD":
                # No body to measure: keep upstream's length.
                kept.append(("Content-Length", r.getheader("Content-Length") or "0"))
            return r.status, kept, body
        finally:
            conn.close()

    def objects(self, digest, auth, rng):
        if auth is not None:
            return self.reply(400, "credentials leaked", content_type="text/plain")
        with self.state.lock:
            repo = self.state.objects.get(digest)
        if repo is None:
            return self.reply(404, "no such object", content_type="text/plain")
        status, headers, body = self.upstream(f"/v2/{repo}/blobs/{digest}", rng)
        self.send_response(status)
        for k, v in headers:
            if k.lower() in ("content-type", "content-range", "accept-ranges", "etag",
                             "content-length"):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def challenge(self):
        self.reply(401, registry_error("UNAUTHORIZED", "authentication required"),
                   headers=[("WWW-Authenticate", f'Basic realm="{SERVICE}"'),
                            ("Docker-Distribution-API-Version", "registry/2.0")])

    def too_many(self):
        self.reply(429, registry_error("TOOMANYREQUESTS", "slow down"),
                   headers=[("Retry-After", "1")])

    def redirect(self, location):
        self.reply(307, b"", headers=[("Location", location)])


def serve(handler, host="127.0.0.1", port=0):
    srv = Server((host, port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---------------------------------------------------------------------------------------
# Registries.

def registry_config(d, name, port, auth=None, tls=False):
    os.makedirs(os.path.join(d, name, "data"))
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {os.path.join(d, name, 'data')}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {uuid.uuid4().hex}",
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
    ]
    if tls:
        lines += ["  tls:",
                  f"    certificate: {os.path.join(d, 'server.crt')}",
                  f"    key: {os.path.join(d, 'server.key')}"]
    if auth:
        lines += ["auth:"] + ["  " + line for line in auth]
    path = os.path.join(d, name, "config.yml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class Registry:
    def __init__(self, d, name, auth=None, tls=False):
        self.d, self.name, self.auth, self.tls = d, name, auth, tls
        self.log = os.path.join(d, name + ".log")
        self.start()

    def start(self):
        self.port = free_port()
        if os.path.isdir(os.path.join(self.d, self.name)):
            shutil.rmtree(os.path.join(self.d, self.name))
        cfg = registry_config(self.d, self.name, self.port, self.auth, self.tls)
        self.proc = spawn([REGISTRY_BIN, "serve", cfg], self.log)

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def probe(self):
        if self.tls:
            ctx = ssl.create_default_context(cafile=os.path.join(self.d, "ca.crt"))
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/v2/")
            return conn.getresponse().status
        finally:
            conn.close()

    def wait(self, deadline):
        tries = 0
        while True:
            if self.proc.poll() is not None:
                if "address already in use" in tail(self.log) and tries < 3:
                    tries += 1
                    self.start()
                    continue
                raise Failure(f"registry {self.name} exited (status {self.proc.returncode}); "
                              f"its log {self.log} ends:\n{tail(self.log)}")
            try:
                status = self.probe()
                if status in (200, 401):
                    return
                raise Failure(f"registry {self.name} answered /v2/ with {status}")
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, ssl.SSLCertVerificationError):
                    raise Failure(f"registry {self.name}: TLS verification failed: {e}")
            if time.monotonic() > deadline:
                raise Failure(f"registry {self.name} did not answer on {self.addr} in time; "
                              f"its log {self.log} ends:\n{tail(self.log)}")
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------
# Seeding.

def seed(d, plain, basic, token):
    policy = os.path.join(d, "policy.json")
    with open(policy, "w") as f:
        json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
    skopeo_tmp = os.path.join(d, "skopeo-tmp")
    os.makedirs(skopeo_tmp)
    env = dict(os.environ, TMPDIR=skopeo_tmp)
    env.pop("REGISTRY_AUTH_FILE", None)

    # multi-platform: the layout's index.json lists the three manifests directly (no ref),
    # which `oci:` cannot name; a layout beside it holds that index as a blob, ref `latest`,
    # so the pushed index is byte for byte testdata's index.json.
    src = os.path.join(ROOT, "testdata/spec/multi-platform")
    multi = os.path.join(d, "multi-layout")
    os.makedirs(os.path.join(multi, "blobs"))
    shutil.copytree(os.path.join(src, "blobs", "sha256"), os.path.join(multi, "blobs", "sha256"))
    with open(os.path.join(src, "index.json"), "rb") as f:
        index = f.read()
    index_digest = "sha256:" + hashlib.sha256(index).hexdigest()
    with open(os.path.join(multi, "blobs", "sha256", index_digest[7:]), "wb") as f:
        f.write(index)
    with open(os.path.join(multi, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(multi, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest,
            "size": len(index), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)

    # The same platforms without the attestation, which skopeo cannot convert: pushed as a
    # Docker manifest list of Docker schema 2 manifests (`--format v2s2`).
    idx = json.loads(index)
    platforms = [m for m in idx["manifests"] if m.get("platform", {}).get("os") != "unknown"]
    v2_index = json.dumps(dict(idx, manifests=platforms)).encode()
    v2_digest = "sha256:" + hashlib.sha256(v2_index).hexdigest()
    v2_multi = os.path.join(d, "multi-v2-layout")
    shutil.copytree(multi, v2_multi)
    with open(os.path.join(v2_multi, "blobs", "sha256", v2_digest[7:]), "wb") as f:
        f.write(v2_index)
    with open(os.path.join(v2_multi, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": v2_digest,
            "size": len(v2_index), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)

    layout = "oci:" + os.path.join(ROOT, "testdata/skopeo/oci-layout") + ":"
    jobs = []  # (key, src, dest, extra args)
    jobs.append(("plain/v2s2/whiteout-file:latest", layout + "whiteout-file",
                 f"{plain.addr}/v2s2/whiteout-file:latest", ["--format", "v2s2"]))
    jobs.append(("plain/v2s2/multi:latest", f"oci:{v2_multi}:latest",
                 f"{plain.addr}/v2s2/multi:latest", ["--all", "--format", "v2s2"]))
    for ref in PLAIN_REFS:
        jobs.append((f"plain/{ref}:latest", layout + ref, f"{plain.addr}/{ref}:latest", []))
    jobs.append(("plain/zstd/whiteout-file:latest",
                 "oci:" + os.path.join(ROOT, "testdata/skopeo/oci-zstd") + ":whiteout-file",
                 f"{plain.addr}/zstd/whiteout-file:latest", []))
    jobs.append(("plain/multi:latest", f"oci:{multi}:latest", f"{plain.addr}/multi:latest",
                 ["--all", "--preserve-digests"]))
    jobs.append(("basic/whiteout-file:latest", layout + "whiteout-file",
                 f"{basic.addr}/whiteout-file:latest",
                 ["--dest-creds", "alice:wonderland", "--dest-cert-dir", os.path.join(d, "certs")]))
    for repo in ("public/whiteout-file", "private/whiteout-file"):
        jobs.append((f"token/{repo}:latest", layout + "whiteout-file",
                     f"{token.addr}/{repo}:latest", ["--dest-creds", "bob:builder"]))

    def copy(job):
        key, source, dest, extra = job
        digestfile = os.path.join(skopeo_tmp, key.replace("/", "_") + ".digest")
        argv = ["skopeo", "--policy", policy, "copy", "--retry-times", "2",
                "--digestfile", digestfile]
        if "--dest-cert-dir" not in extra:
            argv.append("--dest-tls-verify=false")
        if "--dest-creds" not in extra:
            argv.append("--dest-no-creds")
        argv += extra + [source, "docker://" + dest]
        run(argv, f"seeding {key}", env=env)
        with open(digestfile) as f:
            return key, f.read().strip()

    manifests = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for key, digest in pool.map(copy, jobs):
            manifests[key] = digest

    if manifests["plain/multi:latest"] != index_digest:
        raise Failure(f"multi:latest was pushed as {manifests['plain/multi:latest']}, "
                      f"not as testdata's index {index_digest}")
    # The zstd layers must have been pushed as they are, not recompressed.
    conn = http.client.HTTPConnection(plain.addr, timeout=10)
    conn.request("GET", "/v2/zstd/whiteout-file/manifests/latest", headers={"Accept": ACCEPT})
    m = json.loads(conn.getresponse().read())
    conn.close()
    kinds = [layer["mediaType"] for layer in m.get("layers", [])]
    if not kinds or not all(k.endswith("+zstd") for k in kinds):
        raise Failure(f"zstd/whiteout-file lost its zstd layers: {kinds}")
    # The v2s2 pushes must be Docker's forms: a schema 2 manifest and a manifest list.
    for repo, want in (("v2s2/whiteout-file", "application/vnd.docker.distribution.manifest.v2+json"),
                       ("v2s2/multi", "application/vnd.docker.distribution.manifest.list.v2+json")):
        conn = http.client.HTTPConnection(plain.addr, timeout=10)
        conn.request("GET", f"/v2/{repo}/manifests/latest", headers={"Accept": ACCEPT})
        got = json.loads(conn.getresponse().read()).get("mediaType")
        conn.close()
        if got != want:
            raise Failure(f"{repo} was pushed as {got}, not {want}")
    shutil.rmtree(skopeo_tmp, ignore_errors=True)
    return manifests


# ---------------------------------------------------------------------------------------

def main():
    args = sys.argv[1:]
    remove = "--remove-dir-on-exit" in args
    args = [a for a in args if a != "--remove-dir-on-exit"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    d = os.path.abspath(args[0])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    started = time.monotonic()
    try:
        for tool, pkg in ((REGISTRY_BIN, "docker-registry"), ("skopeo", "skopeo"),
                          ("openssl", "openssl")):
            if not shutil.which(tool):
                raise Failure(f"{tool} is missing: apt-get install {pkg}")
        if not os.path.isdir(d) or os.listdir(d):
            raise Failure(f"{d} must be an empty directory")
        x5c = make_certs(d)
        htpasswd = make_htpasswd(d)

        TokenHandler.state = TokenState(Signer(os.path.join(d, "token.key"), x5c))
        token_srv = serve(TokenHandler)
        token_url = f"http://127.0.0.1:{token_srv.server_address[1]}"

        plain = Registry(d, "plain")
        basic = Registry(d, "basic", tls=True,
                         auth=["htpasswd:", f"  realm: {SERVICE}", f"  path: {htpasswd}"])
        token = Registry(d, "token", auth=[
            "token:", f"  realm: {token_url}/token", f"  service: {SERVICE}",
            f"  issuer: {ISSUER}", f"  rootcertbundle: {os.path.join(d, 'token.crt')}"])

        proxy_log = os.path.join(d, "proxy.log")
        ProxyHandler.state = ProxyState(proxy_log)
        proxy_srv = serve(ProxyHandler)
        ProxyHandler.state.port = proxy_srv.server_address[1]
        # `redirect` sends clients to localhost: listen there on IPv6 too, when it exists.
        try:
            serve(ProxyHandler, "::1", ProxyHandler.state.port)
        except OSError:
            pass

        deadline = time.monotonic() + 60
        for r in (plain, basic, token):
            r.wait(deadline)
        ProxyHandler.state.upstream = plain.addr

        manifests = seed(d, plain, basic, token)

        # A port where nothing listens: bound, never listening, kept for our lifetime.
        down = socket.socket()
        down.bind(("127.0.0.1", 0))

        env = {
            "plain": plain.addr, "basic": basic.addr, "token": token.addr,
            "token_service": token_url,
            "proxy": f"127.0.0.1:{ProxyHandler.state.port}",
            "ca": os.path.join(d, "ca.crt"), "cert_dir": os.path.join(d, "certs"),
            "down": f"127.0.0.1:{down.getsockname()[1]}",
            "proxy_log": proxy_log, "manifests": manifests,
        }
        with open(os.path.join(d, "env.json.tmp"), "w") as f:
            json.dump(env, f, indent=2, sort_keys=True)
        os.rename(os.path.join(d, "env.json.tmp"), os.path.join(d, "env.json"))
    except Failure as e:
        print(f"registry harness: {e}", file=sys.stderr)
        cleanup()
        return 1
    except Exception as e:  # noqa: BLE001 - any surprise is a start failure, said clearly
        import traceback
        traceback.print_exc()
        print(f"registry harness: failed to start: {e}", file=sys.stderr)
        cleanup()
        return 1

    print(f"registry harness: up in {time.monotonic() - started:.1f}s", file=sys.stderr)
    print("READY", flush=True)
    try:
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        cleanup()
        if remove:
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup()
