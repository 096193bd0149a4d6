#!/usr/bin/env python3
"""Forwards TCP connections from LISTEN (host:port) to TARGET (host:port).

bench/containers/run puts it on the host's end of a veth pair whose egress
is shaped by tc, so a client in the other namespace reaches a loopback
registry through a link of a known rate. Prints "ready" once listening.
"""
import asyncio
import sys


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def pipe(reader, writer):
    try:
        while data := await reader.read(1 << 18):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def handle(reader, writer, target):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
    except OSError:
        writer.close()
        return
    await asyncio.gather(
        pipe(reader, upstream_writer),
        pipe(upstream_reader, writer),
        return_exceptions=True,
    )


async def main():
    listen, target = address(sys.argv[1]), address(sys.argv[2])
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target), listen[0], listen[1]
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
