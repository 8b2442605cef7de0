#!/usr/bin/env python3
"""A loopback TCP proxy a test can cut: the path between one gateway and the provider.

    tcp_proxy.py --target 127.0.0.1:PORT --port-file FILE [--pid-file FILE]

Forwards every connection on 127.0.0.1:<port> (written to --port-file once listening) to the
target. SIGUSR1 cuts the path: every open connection is reset and the port stops listening, so a
new connection is refused (the provider looks down from this gateway only). SIGUSR2 restores it on
the same port. Loopback only, by construction.
"""
import argparse
import asyncio
import signal
import socket
import struct


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("tcp_proxy: loopback targets only")
    target = ("127.0.0.1", int(port))
    live = set()
    state = {"server": None, "port": 0}

    async def pipe(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def handle(creader, cwriter):
        try:
            preader, pwriter = await asyncio.open_connection(*target)
        except OSError:
            cwriter.close()
            return
        pair = (cwriter, pwriter)
        live.add(pair)
        try:
            await asyncio.gather(pipe(creader, pwriter), pipe(preader, cwriter))
        finally:
            live.discard(pair)

    async def listen():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", state["port"]))
        state["port"] = sock.getsockname()[1]
        state["server"] = await asyncio.start_server(handle, sock=sock)

    def reset(writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:  # RST, not FIN: the way a cut cable or a dead peer looks
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.close()

    def cut():
        if state["server"] is not None:
            state["server"].close()
            state["server"] = None
        for c, p in list(live):
            reset(c)
            reset(p)
        print("cut", flush=True)

    def restore():
        if state["server"] is None:
            asyncio.ensure_future(listen())
        print("restored", flush=True)

    await listen()
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(state["port"]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, cut)
    loop.add_signal_handler(signal.SIGUSR2, restore)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
