"""Serving the emulator over HTTP with the standard library's threaded WSGI server.

`serve` blocks (the `batchrun emulator` command); `start_in_thread` runs a server on a
free port for tests and returns its base URL; `supervise` keeps a server alive across
crashes: it holds the listening socket and forks a fresh server process whenever the
previous one died, so clients only see one dropped connection, which the SDK retries.
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from runner.errors import BatchrunError

from .app import Emulator

CRASH_EXIT_CODE = 86  # what a served emulator exits with when the crash fault fires


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(WSGIRequestHandler):
    verbose = False

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            super().log_message(format, *args)


def make_server(app: Emulator, host: str, port: int, *, listen_socket: socket.socket | None = None,
                verbose: bool = False) -> _ThreadingServer:
    handler = type("Handler", (_Handler,), {"verbose": verbose})
    if listen_socket is None:
        try:
            server = _ThreadingServer((host, port), handler)
        except OSError as err:
            raise BatchrunError(f"cannot listen on {host}:{port}: {err.strerror}",
                                hint="choose another --port (0 picks a free one)") from None
    else:
        server = _ThreadingServer(listen_socket.getsockname()[:2], handler,
                                  bind_and_activate=False)
        server.socket.close()
        server.socket = listen_socket
        server.server_name, server.server_port = host, listen_socket.getsockname()[1]
        server.setup_environ()
    server.set_app(app)
    return server


def origin(server: socketserver.TCPServer) -> str:
    """`http://host:port`: what an Azure client takes as its `azure_endpoint`."""
    host, port = server.socket.getsockname()[:2]
    return f"http://{host}:{port}"


def _base_path(app: Any) -> str:
    config = getattr(app, "config", None)  # an app wrapped by a test has none
    return getattr(config, "base_path", "/v1")


def serve(app: Emulator, host: str, port: int, *, listen_socket: socket.socket | None = None,
          verbose: bool = False, announce: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; the crash fault ends the process with CRASH_EXIT_CODE."""
    server = make_server(app, host, port, listen_socket=listen_socket, verbose=verbose)
    app.on_crash = lambda: os._exit(CRASH_EXIT_CODE)
    if announce:
        announce(origin(server) + app.config.base_path)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@dataclass
class RunningServer:
    url: str  # the base URL of the OpenAI layout, ending in /v1 (or the base path)
    emulator: Emulator  # the app: set `.faults`, read `.executions()`
    server: _ThreadingServer
    thread: threading.Thread

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`: the `azure_endpoint` of the Azure layout."""
        return origin(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(app: Emulator, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve `app` from a background thread (port 0: a free port); for tests."""
    server = make_server(app, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="batchrun-emulator", daemon=True)
    thread.start()
    return RunningServer(origin(server) + _base_path(app), app, server, thread)


def supervise(run_child: Callable[[socket.socket, bool], None], host: str, port: int,
              announce: Callable[[str], None], base_path: str = "/v1") -> int:
    """Listen on host:port, then run `run_child(socket, restarted)` in a forked process,
    again whenever it crashes (exit CRASH_EXIT_CODE, or killed by SIGKILL). POSIX only."""
    try:
        listener = socket.create_server((host, port), backlog=64)
    except OSError as err:
        raise BatchrunError(f"cannot listen on {host}:{port}: {err.strerror}",
                            hint="choose another --port (0 picks a free one)") from None
    announce(f"http://{host}:{listener.getsockname()[1]}{base_path}")
    restarted = False
    child = 0

    def stop(signum: int, frame: Any) -> None:
        if child:
            os.kill(child, signal.SIGTERM)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        sys.stdout.flush()
        child = os.fork()
        if child == 0:  # the server process
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                run_child(listener, restarted)
            finally:
                os._exit(0)
        try:
            _, status = os.waitpid(child, 0)
        except KeyboardInterrupt:
            os.waitpid(child, 0)
            return 130
        code = os.waitstatus_to_exitcode(status)
        if code not in (CRASH_EXIT_CODE, -signal.SIGKILL):
            return 0 if code == -signal.SIGTERM else code
        print(f"emulator process {child} crashed (exit {code}); restarting it",
              file=sys.stderr, flush=True)
        restarted = True
