#!/usr/bin/env python3
"""Memory per idle connection by state: accepted only, after one answered request, on an idle
SSE stream. Usage: idle_memory.py PORT PID none|healthz|sse N (raw sockets; reads VmRSS)."""
import socket, sys, time, os
port=int(sys.argv[1]); pid=int(sys.argv[2]); mode=sys.argv[3]; n=int(sys.argv[4])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
before=rss(); socks=[]
for i in range(n):
    s=socket.create_connection(("127.0.0.1",port))
    if mode=="sse":
        s.sendall(b"GET /sse?channels=idle HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    elif mode=="healthz":
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
time.sleep(2)
for s in socks:
    if mode!="none":
        s.setblocking(False)
        try: s.recv(65536)
        except BlockingIOError: pass
time.sleep(1)
after=rss()
print(mode, n, "KiB/conn", round((after-before)/n,2))
