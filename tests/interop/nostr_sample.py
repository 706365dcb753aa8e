#!/usr/bin/env python3
"""Makes archy-shaped Nostr events with independent code (pynostr for NIP-01/BIP-340, `cryptography`
for the Ed25519 did:key) and prints them as JSON lines; with --publish also sends them to a relay
and fails unless the relay answers OK true for each. Useful both to test nostr_check.py and to feed
archy's own parser with events it did not make.

    python nostr_sample.py [--publish ws://127.0.0.1:PORT] [--app demo] [--version 1.0.0]
                           [--url http://127.0.0.1:8080/x] [--iroh TICKET] [--bad-did-sig]
"""
import argparse
import json
import sys

import base58
import blake3
import websocket
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pynostr.event import Event
from pynostr.key import PrivateKey

from nostr_check import bind_message, release_message


def did_key(ed_priv):
    raw = ed_priv.public_key().public_bytes_raw()
    return "did:key:z" + base58.b58encode(b"\xed\x01" + raw).decode()


def signed(nostr_key, kind, tags, content):
    e = Event(content=content, kind=kind, tags=tags, pubkey=nostr_key.public_key.hex())
    e.sign(nostr_key.hex())
    return e.to_dict()


def samples(a):
    nk, ek = PrivateKey(), Ed25519PrivateKey.generate()
    pk, did = nk.public_key.hex(), did_key(ek)
    envelope = f"sample envelope of {a.app} {a.version}".encode()
    digest, size = blake3.blake3(envelope).hexdigest(), len(envelope)
    sig = ek.sign(release_message(a.app, a.version, digest, size, pk)).hex()
    if a.bad_did_sig:
        sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    app = [["d", f"archy:app:{a.app}"], ["t", "archy-app"], ["app", a.app], ["version", a.version],
           ["x", digest, "blake3"], ["size", str(size)], ["did", did], ["did-sig", sig]]
    app += [["url", u] for u in a.url] + [["iroh", t] for t in a.iroh]
    app += [["alt", f"archy app {a.app} {a.version}"]]
    bind = [["d", f"archy:bind:{did}"], ["t", "archy-bind"], ["did", did],
            ["did-sig", ek.sign(bind_message(did, pk)).hex()], ["alt", "archy publisher key binding"]]
    return [signed(nk, 30078, app, f"{a.app} {a.version}: an archy app (sample)"),
            signed(nk, 30078, bind, f"Nostr key {pk} speaks for {did}")]


def publish(relay, events):
    ws = websocket.create_connection(relay, timeout=10)
    try:
        for ev in events:
            ws.send(json.dumps(["EVENT", ev]))
            while True:
                msg = json.loads(ws.recv())
                if msg[0] == "OK" and msg[1] == ev["id"]:
                    break
            if msg[2] is not True:
                sys.exit(f"relay refused {ev['id']}: {msg[3:]}")
    finally:
        ws.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--publish", metavar="RELAY")
    ap.add_argument("--app", default="demo")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--url", action="append", default=[])
    ap.add_argument("--iroh", action="append", default=[])
    ap.add_argument("--bad-did-sig", action="store_true", help="corrupt the release DID signature")
    a = ap.parse_args()
    events = samples(a)
    if a.publish:
        publish(a.publish, events)
    for ev in events:
        print(json.dumps(ev))


if __name__ == "__main__":
    main()
