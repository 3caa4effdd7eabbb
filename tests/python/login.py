"""Logs in like a RouterOS 7.15+ router: Message-Authenticator on the request, and the
reply is refused unless its Message-Authenticator verifies. Prints the reply as JSON.

usage: login.py HOST PORT SECRET USER PASSWORD pap|chap
"""
import hashlib
import json
import os
import sys

import pyrad.packet
from pyrad.client import Client
from pyrad.dictionary import Dictionary

host, port, secret, user, password, method = sys.argv[1:7]
dictionary = Dictionary(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dictionary"))
client = Client(server=host, authport=int(port), secret=secret.encode(), dict=dictionary,
                enforce_ma=True, retries=2, timeout=3)
req = client.CreateAuthPacket(code=pyrad.packet.AccessRequest, User_Name=user)
req.add_message_authenticator()
if method == "pap":
    req["User-Password"] = req.PwCrypt(password)
elif method == "chap":
    challenge = os.urandom(16)
    ident = b"\x2a"
    req["CHAP-Challenge"] = challenge
    req["CHAP-Password"] = ident + hashlib.md5(ident + password.encode() + challenge).digest()
else:
    sys.exit(f"unknown method {method}")
reply = client.SendPacket(req)
if not reply.verify_message_authenticator(original_authenticator=req.authenticator):
    sys.exit("reply Message-Authenticator does not verify")
def text(value):
    if not isinstance(value, bytes):
        return str(value)
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()


attributes = {str(key): [text(v) for v in reply[key]] for key in reply.keys()}
print(json.dumps({"code": reply.code, "attributes": attributes}))
