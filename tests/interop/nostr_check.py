#!/usr/bin/env python3
"""Checks archy's Nostr events with independent code (pynostr: NIP-01 ids, BIP-340 signatures over
libsecp256k1; `cryptography`: Ed25519 DID signatures).

    python nostr_check.py --relay ws://127.0.0.1:PORT [--events FILE] [--min-events N]
                          [--authors HEX,..] [--no-did-sig] [--fetch-assets] [--timeout 10]

Events come from the relay (one REQ with ARCHY_FILTER, read until EOSE) and/or from FILE (JSON
lines: an event object, or a relay message ["EVENT", sub, event]). Prints one JSON line per event:
{"id","kind","ok","reason","d","parsed"}. Exit 0 when every event verifies and every archy event
(`t` = archy-app / archy-bind) has its required tags and a valid DID signature, and every NIP-82
event (kinds 32267, 30063, 3063) has the draft's required tags, each release naming assets the
relay holds; 1 when one does not (or fewer than --min-events were seen); 2 when the relay can't be
read. With --fetch-assets, an asset whose `url` is on this machine (127.0.0.1, ::1, localhost) is
downloaded and must match its `x` (SHA-256), `blake3` and `size`. Needs the interop venv:
    "$(bash tests/interop/setup-venv.sh)" tests/interop/nostr_check.py --relay ws://...
"""
import argparse
import hashlib
import json
import re
import sys
import time
import urllib.parse
import urllib.request

import base58
import blake3
import websocket
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pynostr.event import Event

ARCHY_KINDS = [30078, 31990, 5, 1985, 30382, 32267, 30063, 3063]


# The messages the publisher's DID key signs (keep in step with archy-nostr).
def release_message(app_id, version, blake3_hex, size, pubkey_hex):
    return f"archy-nostr-release-v1\n{app_id}\n{version}\n{blake3_hex}\n{size}\n{pubkey_hex}".encode()


def bind_message(did, pubkey_hex):
    return f"archy-nostr-bind-v1\n{did}\n{pubkey_hex}".encode()


HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX128 = re.compile(r"^[0-9a-f]{128}$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


class Bad(Exception):
    pass


def did_key_ed25519(did):
    """did:key:z<base58btc(0xed 0x01 || 32-byte key)> -> Ed25519PublicKey."""
    if not did.startswith("did:key:z"):
        raise Bad(f"not a base58btc did:key: {did!r}")
    raw = base58.b58decode(did[len("did:key:z"):])
    if len(raw) != 34 or raw[:2] != b"\xed\x01":
        raise Bad(f"did:key is not an Ed25519 key: {did!r}")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def check_did_sig(did, sig_hex, message):
    if not HEX128.match(sig_hex):
        raise Bad("did-sig is not 64 bytes of lowercase hex")
    try:
        did_key_ed25519(did).verify(bytes.fromhex(sig_hex), message)
    except InvalidSignature:
        raise Bad("DID signature does not verify") from None


def verify_nostr(ev):
    """NIP-01 id and BIP-340 signature, computed by pynostr."""
    for k, t in (("id", str), ("pubkey", str), ("created_at", int), ("kind", int),
                 ("tags", list), ("content", str), ("sig", str)):
        if not isinstance(ev.get(k), t):
            raise Bad(f"field {k} missing or not {t.__name__}")
    if not all(isinstance(t, list) and all(isinstance(s, str) for s in t) for t in ev["tags"]):
        raise Bad("tags are not lists of strings")
    e = Event.from_dict(ev)
    e.compute_id()
    if e.id != ev["id"]:
        raise Bad(f"id mismatch: computed {e.id}")
    try:
        ok = e.verify()
    except Exception as err:  # malformed key or signature
        raise Bad(f"signature check failed: {err}") from None
    if not ok:
        raise Bad("BIP-340 signature does not verify")


def tag_values(ev, name):
    return [t[1:] for t in ev["tags"] if t and t[0] == name]


def one(ev, name, required=True):
    vals = tag_values(ev, name)
    if not vals or len(vals[0]) == 0:
        if required:
            raise Bad(f"missing tag {name!r}")
        return None
    if len(vals) > 1:
        raise Bad(f"tag {name!r} appears {len(vals)} times")
    return vals[0][0]


def parse_app(ev, did_sig):
    if ev["kind"] != 30078:
        raise Bad(f"archy-app event has kind {ev['kind']}, not 30078")
    p = {k: one(ev, k) for k in ("d", "app", "version", "size", "did", "did-sig", "alt")}
    x = tag_values(ev, "x")
    if len(x) != 1 or len(x[0]) < 2 or x[0][1] != "blake3" or not HEX64.match(x[0][0]):
        raise Bad('need exactly one ["x", <64 hex>, "blake3"] tag')
    p["blake3"] = x[0][0]
    if p["d"] != f"archy:app:{p['app']}":
        raise Bad(f"d tag {p['d']!r} is not archy:app:<app>")
    if not SEMVER.match(p["version"]):
        raise Bad(f"version {p['version']!r} is not semver")
    if not p["size"].isdigit():
        raise Bad(f"size {p['size']!r} is not a byte count")
    p["size"] = int(p["size"])
    p["urls"] = [v[0] for v in tag_values(ev, "url") if v]
    p["iroh"] = [v[0] for v in tag_values(ev, "iroh") if v]
    for u in p["urls"]:
        if not u.startswith(("http://", "https://")):
            raise Bad(f"url {u!r} is not http(s)")
    if not ev["content"].strip():
        raise Bad("content is empty")
    did_key_ed25519(p["did"])
    if did_sig:
        check_did_sig(p["did"], p["did-sig"], release_message(
            p["app"], p["version"], p["blake3"], p["size"], ev["pubkey"]))
        p["did_sig_ok"] = True
    return p


def parse_bind(ev, did_sig):
    if ev["kind"] != 30078:
        raise Bad(f"archy-bind event has kind {ev['kind']}, not 30078")
    p = {k: one(ev, k) for k in ("d", "did", "did-sig")}
    if p["d"] != f"archy:bind:{p['did']}":
        raise Bad(f"d tag {p['d']!r} is not archy:bind:<did>")
    did_key_ed25519(p["did"])
    if did_sig:
        check_did_sig(p["did"], p["did-sig"], bind_message(p["did"], ev["pubkey"]))
        p["did_sig_ok"] = True
    return p


KIND_APPLICATION, KIND_RELEASE, KIND_ASSET = 32267, 30063, 3063
ADDRESS = re.compile(r"^\d+:[0-9a-f]{64}:.+$")
MAX_ASSET_FETCH = 16 * 1024 * 1024


def parse_nip82(ev):
    """NIP-82 (draft, nostr-protocol/nips#1336): the tags each kind requires."""
    k = ev["kind"]
    for v in tag_values(ev, "a"):
        if not v or not ADDRESS.match(v[0]):
            raise Bad(f"a tag {v!r} is not <kind>:<pubkey hex>:<d>")
    if k == KIND_APPLICATION:
        p = {"type": "nip82-application", **{t: one(ev, t) for t in ("d", "name")}}
        for t in ("summary", "icon", "url", "repository", "license"):
            p[t] = one(ev, t, required=False)
        p["a"] = [v[0] for v in tag_values(ev, "a")]
        return p
    if k == KIND_RELEASE:
        p = {"type": "nip82-release", **{t: one(ev, t) for t in ("i", "version", "d", "c")}}
        if p["d"] != f"{p['i']}@{p['version']}":
            raise Bad(f"d tag {p['d']!r} is not <i>@<version>")
        p["assets"] = [v[0] for v in tag_values(ev, "e") if v]
        if not p["assets"]:
            raise Bad("the release names no asset (`e` tags)")
        for a in p["assets"]:
            if not HEX64.match(a):
                raise Bad(f"e tag {a!r} is not an event id")
        p["a"] = [v[0] for v in tag_values(ev, "a")]
        return p
    p = {"type": "nip82-asset", **{t: one(ev, t) for t in ("i", "m", "x", "version")}}
    if not HEX64.match(p["x"]):
        raise Bad(f"x tag {p['x']!r} is not a SHA-256 in lowercase hex")
    p["size"] = one(ev, "size", required=False)
    if p["size"] is not None:
        if not p["size"].isdigit():
            raise Bad(f"size {p['size']!r} is not a byte count")
        p["size"] = int(p["size"])
    p["blake3"] = one(ev, "blake3", required=False)
    if p["blake3"] is not None and not HEX64.match(p["blake3"]):
        raise Bad(f"blake3 tag {p['blake3']!r} is not 64 hex")
    p["url"] = one(ev, "url", required=False)
    if p["url"] is not None and not p["url"].startswith(("http://", "https://")):
        raise Bad(f"url {p['url']!r} is not http(s)")
    p["e"] = [v[0] for v in tag_values(ev, "e") if v]
    return p


def on_this_machine(url):
    return urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "::1", "localhost")


def fetch_asset(p):
    """Downloads an asset from this machine and checks its hashes and size."""
    if not p["url"] or not on_this_machine(p["url"]):
        p["fetched"] = False
        return
    with urllib.request.urlopen(p["url"], timeout=10) as r:
        body = r.read(MAX_ASSET_FETCH + 1)
    if len(body) > MAX_ASSET_FETCH:
        raise Bad(f"{p['url']} serves more than {MAX_ASSET_FETCH} bytes")
    if hashlib.sha256(body).hexdigest() != p["x"]:
        raise Bad(f"{p['url']} serves bytes whose SHA-256 is not the asset's x")
    if p["blake3"] is not None and blake3.blake3(body).hexdigest() != p["blake3"]:
        raise Bad(f"{p['url']} serves bytes whose BLAKE3 is not the asset's blake3")
    if p["size"] is not None and len(body) != p["size"]:
        raise Bad(f"{p['url']} serves {len(body)} bytes, the asset says {p['size']}")
    p["fetched"] = True
    p["sha256_ok"] = True


def check_links(events, results):
    """Across events: a release's assets are on the relay (kind 3063, same author) and its app too
    (kind 32267 with d = i); an asset pointing at an archy release (`e`) names the same BLAKE3."""
    by_id = {ev.get("id"): ev for ev in events if isinstance(ev, dict)}
    apps = {(ev["pubkey"], r["d"]) for ev, r in zip(events, results) if r["ok"] and ev["kind"] == KIND_APPLICATION}
    for ev, r in zip(events, results):
        if not r["ok"]:
            continue
        p = r["parsed"]
        try:
            if p["type"] == "nip82-release":
                for a in p["assets"]:
                    asset = by_id.get(a)
                    if asset is None:
                        raise Bad(f"the release names asset {a}, which the relay does not hold")
                    if asset.get("kind") != KIND_ASSET or asset.get("pubkey") != ev["pubkey"]:
                        raise Bad(f"e tag {a} is not a kind 3063 asset by the same author")
                if (ev["pubkey"], p["i"]) not in apps:
                    raise Bad(f"no kind 32267 application with d = {p['i']!r} by the same author")
                p["assets_ok"] = True
            elif p["type"] == "nip82-asset":
                for e in p["e"]:
                    archy = by_id.get(e)
                    if archy is None or archy.get("kind") != 30078:
                        continue  # replaced by a newer release, or not an archy event
                    x = [t for t in archy["tags"] if t[:1] == ["x"] and len(t) > 2 and t[2] == "blake3"]
                    if x and x[0][1] != p["blake3"]:
                        raise Bad(f"the asset's blake3 is not the one archy release {e} names")
                    p["archy_release_ok"] = True
        except Bad as err:
            r["ok"], r["reason"] = False, str(err)


def parse_other(ev):
    """Other kinds: verified only; their tags are listed as name -> values."""
    out = {}
    for t in ev["tags"]:
        if t:
            out.setdefault(t[0], []).append(t[1] if len(t) == 2 else t[1:])
    return out


def check(ev, did_sig, fetch_assets=False):
    res = {"id": ev.get("id") if isinstance(ev, dict) else None,
           "kind": ev.get("kind") if isinstance(ev, dict) else None,
           "ok": False, "reason": None, "d": None, "parsed": None}
    try:
        if not isinstance(ev, dict):
            raise Bad("not a JSON object")
        d = [t[1] for t in ev.get("tags") or [] if isinstance(t, list) and t[:1] == ["d"] and len(t) > 1]
        res["d"] = d[0] if d else None
        verify_nostr(ev)
        ts = {v[0] for v in tag_values(ev, "t") if v}
        if "archy-app" in ts:
            res["parsed"] = {"type": "archy-app", **parse_app(ev, did_sig)}
        elif "archy-bind" in ts:
            res["parsed"] = {"type": "archy-bind", **parse_bind(ev, did_sig)}
        elif ev["kind"] in (KIND_APPLICATION, KIND_RELEASE, KIND_ASSET):
            res["parsed"] = parse_nip82(ev)
            if fetch_assets and ev["kind"] == KIND_ASSET:
                fetch_asset(res["parsed"])
        else:
            res["parsed"] = {"type": "other", "tags": parse_other(ev)}
        res["ok"] = True
    except (Bad, ValueError, UnicodeError, OSError) as err:
        res["reason"] = str(err)
    return res


def fetch(relay, timeout, authors):
    filt = {"kinds": ARCHY_KINDS}
    if authors:
        filt["authors"] = authors
    ws = websocket.create_connection(relay, timeout=timeout)
    events, deadline = [], time.monotonic() + timeout
    try:
        ws.send(json.dumps(["REQ", "archy-check", filt]))
        while True:
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(ws.recv())
            if msg[0] == "EVENT" and msg[1] == "archy-check":
                events.append(msg[2])
            elif msg[0] == "EOSE":
                break
            elif msg[0] == "CLOSED":
                raise Bad(f"relay closed the subscription: {msg[2:]}")
            elif msg[0] == "NOTICE":
                print(f"relay notice: {msg[1:]}", file=sys.stderr)
        ws.send(json.dumps(["CLOSE", "archy-check"]))
    finally:
        ws.close()
    return events


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--relay", help="ws://127.0.0.1:PORT")
    ap.add_argument("--events", help="file of event JSON lines")
    ap.add_argument("--authors", help="comma-separated hex pubkeys to restrict the REQ to")
    ap.add_argument("--min-events", type=int, default=0, help="fail if fewer events are seen")
    ap.add_argument("--no-did-sig", action="store_true", help="skip the Ed25519 DID signature check")
    ap.add_argument("--fetch-assets", action="store_true",
                    help="download NIP-82 assets whose url is on this machine and check their hashes")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    if not a.relay and not a.events:
        ap.error("give --relay and/or --events")
    events = []
    if a.events:
        with open(a.events, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    v = json.loads(line)
                    events.append(v[2] if isinstance(v, list) and v[:1] == ["EVENT"] else v)
    if a.relay:
        try:
            events += fetch(a.relay, a.timeout, a.authors.split(",") if a.authors else None)
        except (OSError, websocket.WebSocketException, Bad, ValueError, LookupError, TypeError) as err:
            print(f"error: reading {a.relay}: {err!r}", file=sys.stderr)
            return 2
    results = [check(ev, not a.no_did_sig, a.fetch_assets) for ev in events]
    check_links(events, results)
    failed = 0
    for r in results:
        failed += not r["ok"]
        print(json.dumps(r, sort_keys=True))
    print(f"nostr_check: {len(events)} events, {failed} failed", file=sys.stderr)
    return 1 if failed or len(events) < a.min_events else 0


if __name__ == "__main__":
    sys.exit(main())
