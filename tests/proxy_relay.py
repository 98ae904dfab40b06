"""A ProxyCommand for tests: relays stdin/stdout to 127.0.0.1:PORT, whatever host it is asked for.

Usage: proxy_relay.py PORT RECORD [ARG...]. It appends the ARGs (the expanded %h %p %r) as one
line to RECORD and says what it relays on stderr, so tests can check what the proxy was asked
for and where its errors went. Nothing but 127.0.0.1 is ever connected to.
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def main() -> None:
    port, record, *args = sys.argv[1:]
    with open(record, "a") as out:
        out.write(" ".join(args) + "\n")
    print(f"relaying {' '.join(args)} to 127.0.0.1:{port}", file=sys.stderr)
    sock = socket.create_connection(("127.0.0.1", int(port)))

    def upstream() -> None:
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(65536):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
