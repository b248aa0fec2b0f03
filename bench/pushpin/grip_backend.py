"""The backend behind Pushpin in bench/compare.sh.

Pushpin holds a stream open only when the backend says so: this server answers every
request with `Grip-Hold: stream` on channel `bench` and an empty initial body, keeping the
connection from Pushpin alive. Standard library only.

Usage: python3 grip_backend.py PORT
"""

import asyncio
import sys

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Grip-Hold: stream\r\n"
    b"Grip-Channel: bench\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
