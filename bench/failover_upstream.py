# An upstream for bench/failover.sh: a JSON document that changes on every request, and an
# SSE stream at /sse that numbers its events and resumes after Last-Event-ID.
import http.server, json, time, sys, threading
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.startswith('/sse'):
            self.send_response(200); self.send_header('content-type','text/event-stream'); self.end_headers()
            last = self.headers.get('last-event-id')
            print(f"{time.time():.3f} sse connect last={last}", flush=True)
            i = int(last) if last else 0
            try:
                while True:
                    i += 1
                    self.wfile.write(f"id: {i}\ndata: {i}\n\n".encode()); self.wfile.flush()
                    time.sleep(0.1)
            except Exception:
                return
        n[0] += 1
        body = json.dumps({"v": n[0], "items": list(range(50))}).encode()
        self.send_response(200); self.send_header('content-type','application/json'); self.send_header('content-length', str(len(body))); self.end_headers(); self.wfile.write(body)
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
