#!/usr/bin/env python3
"""A fast HTTP/1.1 byte source on loopback for profiling: every request gets SIZE bytes (default 256 MiB).

    python3 bench/profile/source.py PORT [SIZE]

Keep-alive, one thread per connection; the body is one 1 MiB buffer sent again and again, so the source costs
little CPU next to the proxy under test.
"""
import socket
import sys
import threading

port = int(sys.argv[1])
size = int(sys.argv[2]) if len(sys.argv) > 2 else 256 << 20
chunk = memoryview(bytes(range(256)) * 4096)  # 1 MiB


def serve(conn):
    with conn:
        buffered = b""
        while True:
            while b"\r\n\r\n" not in buffered:
                data = conn.recv(65536)
                if not data:
                    return
                buffered += data
            _, buffered = buffered.split(b"\r\n\r\n", 1)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size)
            left = size
            while left > 0:
                n = min(left, len(chunk))
                conn.sendall(chunk[:n])
                left -= n


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(128)
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
