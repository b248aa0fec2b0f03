#!/usr/bin/env python3
"""Per-stream memory of one connection carrying many streams.

Usage: stream_memory.py PID PORT   (a streamgate started with
[limits] max_streams_per_connection >= 2000 listening on 127.0.0.1:PORT)

Opens 20 connections of 2,000 streams each, first on new channels (a channel per stream),
then on 2,000 shared channels, and reports the server's RSS growth per stream.
"""
import socket
import sys
import time

PID, PORT = sys.argv[1], int(sys.argv[2])
STREAMS, CONNECTIONS = 2000, 20
held = []


def rss_kib():
    with open(f"/proc/{PID}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS for that pid")


def connect(names):
    sock = socket.create_connection(("127.0.0.1", PORT))
    sock.sendall(f"GET /sse?channels={','.join(names)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    sock.settimeout(5)
    if not sock.recv(4096).startswith(b"HTTP/1.1 200"):
        raise SystemExit("the stream did not open")
    held.append(sock)


def measure(label, names_of):
    before = rss_kib()
    for c in range(CONNECTIONS):
        connect(names_of(c))
    time.sleep(1)
    grown = (rss_kib() - before) * 1024 / (STREAMS * CONNECTIONS)
    print(f"{CONNECTIONS} connections x {STREAMS} streams, {label}: {grown:.0f} bytes per stream")


connect([f"warm{i}" for i in range(10)])  # the allocator's first growth is not a stream's
measure("a new channel each", lambda c: [f"n{c}-{i}" for i in range(STREAMS)])
shared = [f"s{i}" for i in range(STREAMS)]
connect(shared)
measure("shared channels", lambda c: shared)
