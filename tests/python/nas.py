"""Plays a RouterOS NAS's incoming CoA port (/radius incoming, 3799) with pyrad: verifies
each CoA-Request and Disconnect-Request with the shared secret, answers ACK, and prints one
JSON line per request ({"code": ..., "attributes": {...}}) so the test can see what arrived.
Prints "listening" once the socket is bound.

usage: nas.py HOST PORT SECRET
"""
import json
import os
import sys

import pyrad.packet
from pyrad import server
from pyrad.dictionary import Dictionary

host, port, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
dictionary = Dictionary(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dictionary"))


def text(value):
    if not isinstance(value, bytes):
        return str(value)
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()


class Nas(server.Server):
    def _report(self, pkt):
        attributes = {str(key): [text(v) for v in pkt[key]] for key in pkt.keys()}
        print(json.dumps({"code": pkt.code, "attributes": attributes}), flush=True)

    def HandleCoaPacket(self, pkt):
        self._report(pkt)
        reply = self.CreateReplyPacket(pkt)
        reply.code = pyrad.packet.CoAACK
        self.SendReplyPacket(pkt.fd, reply)

    def HandleDisconnectPacket(self, pkt):
        self._report(pkt)
        reply = self.CreateReplyPacket(pkt)
        reply.code = pyrad.packet.DisconnectACK
        self.SendReplyPacket(pkt.fd, reply)


nas = Nas(addresses=[host], coaport=port, dict=dictionary, auth_enabled=False,
          acct_enabled=False, coa_enabled=True,
          hosts={"127.0.0.1": server.RemoteHost("127.0.0.1", secret, "agent")})
nas.BindToAddress(host)
print("listening", flush=True)
nas.Run()
