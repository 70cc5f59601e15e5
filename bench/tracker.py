#!/usr/bin/env python3
"""A minimal BitTorrent HTTP tracker for bench/swarm.sh (BEP 3 announce, compact peer lists).

Keeps, per info hash, every peer that announced (its address as the connection shows it, and
the port it announced), drops a peer that announces `stopped`, and answers each announce with
the other peers. Enough for a benchmark on a private network; not for anything else.

usage: tracker.py HOST PORT
"""
import socket
import struct
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SWARMS = {}


def bencode(value):
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, str):
        return bencode(value.encode())
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(type(value))


class Announce(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/announce":
            self.send_error(404)
            return
        # info_hash and peer_id are raw bytes, percent-encoded.
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True, encoding="latin-1")
        try:
            info_hash = query["info_hash"][0].encode("latin-1")
            port = int(query["port"][0])
        except (KeyError, ValueError):
            self.reply({"failure reason": "bad announce"})
            return
        peer = (self.client_address[0], port)
        swarm = SWARMS.setdefault(info_hash, set())
        if query.get("event", [""])[0] == "stopped":
            swarm.discard(peer)
        else:
            swarm.add(peer)
        others = b"".join(
            socket.inet_aton(ip) + struct.pack(">H", p) for ip, p in swarm if (ip, p) != peer
        )
        self.reply({"interval": 5, "min interval": 1, "peers": others})

    def reply(self, body):
        data = bencode(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Announce).serve_forever()
