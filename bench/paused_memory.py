#!/usr/bin/env python3
"""Server memory per paused subscriber: N SSE subscribers that never read (small receive
buffers), then M messages of B bytes published to their channel; reads VmRSS before the
subscribers, with them idle, and after the messages (once the server has written what the
sockets take). Usage: paused_memory.py PORT PID N M B"""
import json, socket, sys, time, urllib.request

port, pid, n, m, size = (int(a) for a in sys.argv[1:6])


def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


before = rss_kib()
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /sse?channels=paused HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
time.sleep(2)
idle = rss_kib()
payload = "x" * size
url = f"http://127.0.0.1:{port}/channels/paused/messages"
for _ in range(m):
    body = json.dumps({"data": payload}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
time.sleep(3)
after = rss_kib()
print(f"{n} paused subscribers, {m} messages of {size} B: "
      f"idle {(idle - before) / n:.1f} KiB each, after the messages {(after - before) / n:.1f} KiB each")
