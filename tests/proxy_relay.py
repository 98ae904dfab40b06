"""A ProxyCommand for tests: relays stdin/stdout to 127.0.0.1:PORT, whatever host it is asked for.

Usage: proxy_relay.py [--bytes-per-s N] PORT RECORD [ARG...]. It appends the ARGs (the expanded
%h %p %r) as one line to RECORD and says what it relays on stderr, so tests can check what the
proxy was asked for and where its errors went. `--bytes-per-s` makes the way to the host a slow
link (an upload over a hotel's Wi-Fi). Nothing but 127.0.0.1 is ever connected to.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

CHUNK = 16384


def main() -> None:
    rate = None
    argv = sys.argv[1:]
    if argv[0] == "--bytes-per-s":
        rate, argv = float(argv[1]), argv[2:]
    port, record, *args = argv
    with open(record, "a") as out:
        out.write(" ".join(args) + "\n")
    print(f"relaying {' '.join(args)} to 127.0.0.1:{port}", file=sys.stderr)
    sock = socket.create_connection(("127.0.0.1", int(port)))

    def upstream() -> None:
        while data := os.read(0, CHUNK):
            sock.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
        sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(65536):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
