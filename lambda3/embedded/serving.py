"""Serving a socketserver-based HTTP server from a daemon thread, and stopping it."""
from __future__ import annotations

import socketserver
import threading


def serve_in_thread(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Start `server.serve_forever` in a daemon thread (polling for shutdown every 50 ms)."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    return thread


def stop_serving(server: socketserver.BaseServer, thread: threading.Thread | None) -> None:
    """Stop the serving thread (if it runs), wait for it, and close the listening socket."""
    if thread is not None:
        server.shutdown()
        thread.join(timeout=5)
    server.server_close()
