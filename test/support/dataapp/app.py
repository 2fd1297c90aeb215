# The test application for memcachedPool and safeMigration: an HTTP service that loads its configuration file
# once, at start (a memcached pool, a PostgreSQL database), so a new configuration takes a restart, and that
# looks for its read-only flag file on every write. `check` is its operator check command: a write and a read
# through the running service, exit 0 when both work.
#
#   app.py serve CONFIG ADDRESS PORT
#   app.py check URL cache|notes [DATABASE]     (notes: DATABASE is the one the service must be running on)
#
# CONFIG (JSON): {"memcached": ["host:port", ...],
#                 "database": {"host", "port", "user", "name", "passwordFile"}, "readOnlyFlag": "/path"}
import http.server
import json
import os
import secrets
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import zlib


def memcached(server, command, until):
    host, port = server.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(command)
        reply = b""
        while not any(reply.endswith(u) for u in until):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


class App:
    def __init__(self, config):
        self.pool = config.get("memcached", [])
        self.db = config.get("database")
        self.read_only_flag = config.get("readOnlyFlag")
        if self.db:
            with open(self.db["passwordFile"]) as f:
                self.password = f.read().strip()

    def server_for(self, key):
        return self.pool[zlib.crc32(key.encode()) % len(self.pool)]

    def cache_set(self, key, value):
        data = value.encode()
        reply = memcached(self.server_for(key), b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(data), data), [b"\r\n"])
        return reply.startswith(b"STORED")

    def cache_get(self, key):
        reply = memcached(self.server_for(key), b"get %s\r\n" % key.encode(), [b"END\r\n"])
        if not reply.startswith(b"VALUE"):
            return None
        return reply.split(b"\r\n")[1].decode()

    def sql(self, script, **variables):
        argv = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", self.db["host"], "-p", str(self.db["port"]), "-U", self.db["user"], "-d", self.db["name"]]
        for k, v in variables.items():
            argv += ["-v", f"{k}={v}"]
        # Through stdin, so psql fills :'variables' in (it does not in -c).
        res = subprocess.run(argv + ["-f", "-"], input=script, capture_output=True, text=True, timeout=20, env={**os.environ, "PGPASSWORD": self.password})
        if res.returncode != 0:
            raise RuntimeError(res.stderr.strip())
        return res.stdout

    def read_only(self):
        return bool(self.read_only_flag) and os.path.exists(self.read_only_flag)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()

    def do_GET(self):
        try:
            if self.path == "/health":
                return self.reply(200, "ok")
            if self.path == "/config":
                return self.reply(200, {"memcached": APP.pool, "database": APP.db and APP.db["name"]})
            if self.path == "/whoami":
                return self.reply(200, {"database": APP.sql("SELECT current_database();").strip(), "readOnly": APP.read_only()})
            if self.path == "/notes":
                return self.reply(200, [line for line in APP.sql("SELECT body FROM notes ORDER BY id;").split("\n") if line])
            if self.path.startswith("/cache/"):
                value = APP.cache_get(self.path[len("/cache/"):])
                return self.reply(200, value) if value is not None else self.reply(404, "not found")
            self.reply(404, "not found")
        except Exception as e:  # the check reports what went wrong
            self.reply(500, str(e))

    def do_POST(self):
        try:
            body = self.body()
            if self.path.startswith("/cache/"):
                return self.reply(200, "stored") if APP.cache_set(self.path[len("/cache/"):], body) else self.reply(502, "not stored")
            if self.path == "/notes":
                if APP.read_only():
                    return self.reply(503, "read-only: writes are refused")
                APP.sql("INSERT INTO notes(body) VALUES (:'body');", body=body)
                return self.reply(201, "written")
            self.reply(404, "not found")
        except Exception as e:
            self.reply(500, str(e))

    def log_message(self, *args):
        pass


def request(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=body.encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def check(url, kind, database=None):
    token = "opsflow-check-" + secrets.token_hex(6)
    if kind == "cache":
        status, text = request("POST", f"{url}/cache/{token}", token)
        if status != 200:
            sys.exit(f"cache write refused: HTTP {status} {text}")
        status, text = request("GET", f"{url}/cache/{token}")
        if status != 200 or text != token:
            sys.exit(f"cache read failed: HTTP {status} {text}")
        print(f"cache write and read ok through {url}")
        return
    status, text = request("GET", f"{url}/whoami")
    if status != 200:
        sys.exit(f"whoami failed: HTTP {status} {text}")
    if database and json.loads(text)["database"] != database:
        sys.exit(f"the application runs on {json.loads(text)['database']}, not {database}")
    status, text = request("POST", f"{url}/notes", token)
    if status != 201:
        sys.exit(f"write refused: HTTP {status} {text}")
    status, text = request("GET", f"{url}/notes")
    if status != 200 or token not in json.loads(text):
        sys.exit(f"read failed: HTTP {status} {text}")
    print(f"write and read ok through {url}")


if sys.argv[1] == "check":
    check(*sys.argv[2:])
    sys.exit(0)

with open(sys.argv[2]) as f:
    APP = App(json.load(f))
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer((sys.argv[3], int(sys.argv[4])), Handler).serve_forever()
