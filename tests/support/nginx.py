"""A real nginx (Debian's) on loopback in front of qtsp instances, with an HTTP cache."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from support.server import free_port

# Every nginx a test starts keeps its temporary files in its own directory.
TEMP_PATHS = "\n".join(f"    {kind}_temp_path {{dir}}/{name};" for kind, name in (
    ("client_body", "body"), ("proxy", "proxy"), ("fastcgi", "fastcgi"), ("uwsgi", "uwsgi"), ("scgi", "scgi")))

CONF = """
user root;
worker_processes 2;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
""" + TEMP_PATHS + """
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=qtsp:10m max_size=100m inactive=10m use_temp_path=off;
    upstream qtsp {{
{servers}
        keepalive 64;
        keepalive_timeout 5s;  # below qtsp serve's 10 s idle timeout, so nginx never reuses a closed connection
    }}
    server {{
        listen 127.0.0.1:{port};
        # Buffer request bodies here, with a timeout: a client trickling a body then never ties up a
        # qtsp worker thread (granian's WSGI body read has no timeout of its own).
        proxy_request_buffering on;
        client_body_timeout 10s;
        client_max_body_size 256k;
        location /ocsp/ {{
            # RFC 5019 GET: cached for the max-age qtsp sends (Cache-Control), keyed by the request URI.
            proxy_pass http://qtsp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache qtsp;
            proxy_cache_key $uri;
            proxy_cache_lock on;
            add_header X-Cache $upstream_cache_status;
        }}
        location /crl/ {{
            proxy_pass http://qtsp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache qtsp;
            add_header X-Cache $upstream_cache_status;
        }}
        location / {{
            proxy_pass http://qtsp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx is missing: apt-get install nginx")
    return found


class Nginx:
    def __init__(self, upstreams: list[str], directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"        server {u.removeprefix('http://')};" for u in upstreams)
        (self.dir / "nginx.conf").write_text(CONF.format(dir=self.dir, port=self.port, servers=servers))
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        self.proc = subprocess.Popen([nginx_binary(), "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                opener.open(self.url + "/healthz", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("nginx did not come up")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGQUIT)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
