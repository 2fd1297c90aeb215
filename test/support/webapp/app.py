# A release of the test web service: serves its own release id (the name of the directory it runs from) and a
# health status read from the release's HEALTH file, so a test can ship a release that fails its health check.
import http.server
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
RELEASE = os.path.basename(HERE)
with open(os.path.join(HERE, "HEALTH")) as f:
    HEALTH = int(f.read().strip())


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status = HEALTH if self.path == "/health" else 200
        body = RELEASE.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
