"""The baseline of the benchmarks: a bare Flask app with one trivial JSON route, served by a chosen WSGI server.

Run as a subprocess by http_throughput.py and wsgi_servers.py:

    python bench/bare_app.py --server cheroot --threads 16 --ready-file /tmp/ready.json

It listens on 127.0.0.1 on a free port and, once it serves, writes `{"url": "http://127.0.0.1:PORT"}` to the
ready file (atomically). It stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from flask import Flask

SERVERS = ("cheroot", "waitress", "gunicorn", "werkzeug")
ROUTE = "/ping"


def create_app() -> Flask:
    app = Flask("bench.bare")

    @app.get(ROUTE)
    def ping() -> dict[str, Any]:
        return {"ok": True}

    return app


def write_ready(path: Path, host: str, port: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"url": f"http://{host}:{port}", "pid": os.getpid()}) + "\n")
    os.replace(tmp, path)


def _wait_for_signal() -> None:
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        pass


def serve_cheroot(app: Flask, host: str, threads: int, ready: Path) -> None:
    """Exactly as mockcore/server.py serves a face: same parameters, served from a background thread."""
    from cheroot import wsgi

    server = wsgi.Server(
        (host, 0),
        app,
        numthreads=threads,
        server_name="bench",
        request_queue_size=64,
        shutdown_timeout=1,
    )
    server.expiration_interval = 0.05
    server.prepare()
    thread = threading.Thread(target=server.serve, name="bench-cheroot", daemon=True)
    thread.start()
    write_ready(ready, host, server.bind_addr[1])
    try:
        _wait_for_signal()
    finally:
        server.stop()
        thread.join(timeout=5)


def serve_waitress(app: Flask, host: str, threads: int, ready: Path) -> None:
    from waitress import create_server

    server = create_server(app, host=host, port=0, threads=threads)
    write_ready(ready, host, server.effective_port)
    server.run()  # SIGTERM's default action ends the process


def serve_werkzeug(app: Flask, host: str, threads: int, ready: Path) -> None:
    """The development server, threaded (one thread per connection; `threads` does not apply), no access log."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, 0, app, threaded=True)
    write_ready(ready, host, server.server_port)
    server.serve_forever()


def serve_gunicorn(app: Flask, host: str, threads: int, ready: Path) -> None:
    """One gthread worker with `threads` threads; the worker writes the ready file once it has booted."""
    from gunicorn.app.base import BaseApplication

    def post_worker_init(worker: Any) -> None:
        write_ready(ready, host, worker.sockets[0].getsockname()[1])

    options: dict[str, Any] = {
        "bind": f"{host}:0",
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "loglevel": "warning",
        "post_worker_init": post_worker_init,
    }

    class Embedded(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    Embedded().run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=SERVERS, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    serve = {
        "cheroot": serve_cheroot,
        "waitress": serve_waitress,
        "gunicorn": serve_gunicorn,
        "werkzeug": serve_werkzeug,
    }[args.server]
    serve(create_app(), args.host, args.threads, args.ready_file)


if __name__ == "__main__":
    main()
