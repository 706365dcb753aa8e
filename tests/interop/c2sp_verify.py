#!/usr/bin/env python3
# Independent verifier of transparency-log formats: C2SP signed-note (note format, vkeys, key IDs,
# Ed25519 signatures), tlog-checkpoint (note body), tlog-cosignature/v1 (timestamped Ed25519,
# signature type 0x04) and RFC 6962 Merkle inclusion and consistency proofs (verified with the
# RFC 9162 section 2.1.3.2 and 2.1.4.2 algorithms, with SHA-256 as tlog-tiles requires).
# Written from the C2SP specification texts (github.com/C2SP/C2SP: signed-note.md,
# tlog-checkpoint.md, tlog-cosignature.md, tlog-tiles.md) and the RFCs, NOT from archy's Rust
# code, so that it is an independent check of what archy produces.
#
# Usage: one JSON object on stdin (fields in FIELDS; see verify()); prints `ok: <summary>` and
# exits 0, or prints `error: <reason>` and exits 1.  `c2sp_verify.py --self-test` tests itself.
# Needs the standard library and `cryptography`: "$(bash tests/interop/setup-venv.sh)" has both.
import base64, binascii, hashlib, json, re, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FIELDS = ("checkpoint", "log_vkey", "witness_vkeys", "witnesses_required", "leaf", "leaf_index",
          "inclusion", "old_checkpoint", "consistency")
TYPE_ED25519, TYPE_COSIG_V1 = 0x01, 0x04  # signed-note signature type bytes
MAX_SIGNATURES = 100  # signed-note: verifiers SHOULD cap this, MUST accept at least 16
EM_DASH = "\u2014"

class Fail(Exception):
    pass

def require(cond, reason):
    if not cond:
        raise Fail(reason)

def b64d(s, what, size=None):
    """Strict standard base64 (RFC 4648 section 4): padded, canonical, optionally of exact size."""
    require(isinstance(s, str), f"{what}: expected a base64 string")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Fail(f"{what}: invalid base64 {s!r}")
    require(b64e(raw) == s, f"{what}: non-canonical base64 {s!r}")
    require(size is None or len(raw) == size, f"{what}: expected {size} bytes, got {len(raw)}")
    return raw

def b64e(b):
    return base64.b64encode(b).decode()

def check_key_name(name, what):
    require(name and "+" not in name and not any(c.isspace() for c in name),
            f"{what}: invalid key name {name!r} (must be non-empty, without spaces or '+')")

def key_id(name, sig_type, pub):
    # signed-note: key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + pub).digest()[:4]

def parse_vkey(s, want_type, what):
    """<name>+<hex key ID>+base64(type || public key); the key ID must be the derived one."""
    require(isinstance(s, str), f"{what}: expected a verifier key string")
    parts = s.split("+", 2)  # the name and the hex ID have no '+', the base64 may
    require(len(parts) == 3, f"{what}: not of the form name+keyid+key: {s!r}")
    name, id_hex, key_b64 = parts
    check_key_name(name, what)
    require(re.fullmatch(r"[0-9a-f]{8}", id_hex), f"{what}: key ID {id_hex!r} is not 8 lowercase hex digits")
    raw = b64d(key_b64, f"{what} key")
    require(len(raw) == 33 and raw[0] == want_type,
            f"{what}: expected signature type 0x{want_type:02x} and a 32-byte Ed25519 key")
    kid = key_id(name, raw[0], raw[1:])
    require(kid.hex() == id_hex, f"{what}: key ID {id_hex} does not match derived key ID {kid.hex()}")
    return {"name": name, "kid": kid, "pub": Ed25519PublicKey.from_public_bytes(raw[1:]), "raw": raw}

def parse_note(note, what):
    """signed-note format; returns (text, [(key name, key ID || signature)])."""
    require(isinstance(note, str), f"{what}: expected a string")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise Fail(f"{what}: not valid UTF-8")
    require(not any(c < " " and c != "\n" for c in note), f"{what}: has ASCII control characters other than newline")
    require(note.endswith("\n"), f"{what}: does not end with a newline")
    cut = note.rfind("\n\n")  # the text is separated from the signatures by the LAST empty line
    require(cut >= 0, f"{what}: no blank line separating the text from the signatures")
    text, lines = note[:cut + 1], note[cut + 2:].split("\n")[:-1]
    require(lines, f"{what}: no signature lines after the last blank line")
    require(len(lines) <= MAX_SIGNATURES, f"{what}: more than {MAX_SIGNATURES} signature lines")
    sigs = []
    for i, line in enumerate(lines, 1):
        require(line.startswith(EM_DASH + " "),
                f"{what}: signature line {i} does not start with em dash U+2014 and a space: {line!r}")
        fields = line[2:].split(" ")
        require(len(fields) == 2, f"{what}: signature line {i} is not '\u2014 <name> <base64>': {line!r}")
        check_key_name(fields[0], f"{what} signature line {i}")
        blob = b64d(fields[1], f"{what} signature line {i}")
        require(len(blob) > 4, f"{what}: signature line {i} is too short for key ID || signature")
        sigs.append((fields[0], blob))
    return text, sigs

def matching(sigs, vk):
    # A signature belongs to a key when both key name and key ID match; others are ignored.
    return [blob for name, blob in sigs if name == vk["name"] and blob[:4] == vk["kid"]]

def verify_ed25519_note(text, sigs, vk, what):
    blobs = matching(sigs, vk)
    require(blobs, f"{what}: no signature line from key {vk['name']}+{vk['kid'].hex()}")
    for blob in blobs:  # every signature by the known key must verify
        require(len(blob) == 4 + 64, f"{what}: Ed25519 signature by {vk['name']} is not 64 bytes")
        try:
            vk["pub"].verify(blob[4:], text.encode())
        except InvalidSignature:
            raise Fail(f"{what}: Ed25519 signature by {vk['name']} does not verify over the note text")

def parse_checkpoint(text, what):
    """tlog-checkpoint text: origin, tree size, base64 root hash, optional extension lines."""
    lines = text[:-1].split("\n")
    require(len(lines) >= 3, f"{what}: text has {len(lines)} lines, needs origin, tree size and root hash")
    for i, line in enumerate(lines, 1):
        require(line, f"{what}: text line {i} is empty")
    origin, size_s, root_s = lines[:3]
    require(re.fullmatch(r"0|[1-9][0-9]*", size_s),
            f"{what}: tree size {size_s!r} is not a decimal without leading zeros")
    size = int(size_s)
    require(size < 2 ** 64, f"{what}: tree size {size} does not fit in 64 bits")
    root = b64d(root_s, f"{what} root hash", 32)
    require(size > 0 or root == hashlib.sha256(b"").digest(), f"{what}: empty tree's root hash is not SHA-256('')")
    return origin, size, root, lines[3:]

def verify_checkpoint(note, log_vk, what):
    text, sigs = parse_note(note, what)
    origin, size, root, _extensions = parse_checkpoint(text, what)
    require(origin == log_vk["name"], f"{what}: origin line {origin!r} is not the log key name {log_vk['name']!r}")
    verify_ed25519_note(text, sigs, log_vk, what)
    return text, sigs, origin, size, root

def verify_cosignatures(text, sigs, witnesses):
    """Names of the witnesses with a valid tlog-cosignature/v1 line; any invalid one is fatal."""
    good = []
    for w in witnesses:
        blobs = matching(sigs, w)
        for blob in blobs:
            require(len(blob) == 4 + 8 + 64,
                    f"cosignature by {w['name']}: {len(blob)} bytes, expected 76 (key ID, u64 time, signature)")
            ts = int.from_bytes(blob[4:12], "big")
            require(ts <= 2 ** 63 - 1, f"cosignature by {w['name']}: timestamp {ts} exceeds 2^63-1")
            try:
                w["pub"].verify(blob[12:], f"cosignature/v1\ntime {ts}\n".encode() + text.encode())
            except InvalidSignature:
                raise Fail(f"cosignature by {w['name']} (time {ts}) does not verify")
        if blobs:
            good.append(w["name"])
    return good

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()

def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()

def verify_inclusion(index, size, lhash, proof, root):
    """RFC 9162 section 2.1.3.2."""
    require(index < size, f"inclusion: leaf index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, lhash
    for p in proof:
        require(sn != 0, "inclusion: proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    require(sn == 0, "inclusion: proof is too short")
    require(r == root, f"inclusion: proof for leaf {index} does not lead to the checkpoint root hash")

def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 section 2.1.4.2, plus the trivial cases (old tree empty, or same size)."""
    require(first <= second, f"consistency: old tree size {first} is larger than new tree size {second}")
    if first == second or first == 0:
        require(not proof, f"consistency: proof from size {first} to {second} must be empty")
        require(first == 0 or first_root == second_root,
                f"consistency: same tree size {first} but different root hashes")
        return
    require(proof, f"consistency: empty proof from size {first} to {second}")
    if first & (first - 1) == 0:  # first is a power of two
        proof = [first_root] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        require(sn != 0, "consistency: proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    require(sn == 0, "consistency: proof is too short")
    require(fr == first_root, f"consistency: proof does not reproduce the old root hash (size {first})")
    require(sr == second_root, f"consistency: proof does not reproduce the new root hash (size {second})")

def get_int(obj, key, default=None):
    v = obj.get(key, default)
    require(isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"{key}: expected a non-negative integer")
    return v

def get_hashes(obj, key):
    require(isinstance(obj[key], list), f"{key}: expected a list of base64 hashes")
    return [b64d(h, f"{key}[{i}]", 32) for i, h in enumerate(obj[key])]

def verify(obj):
    require(isinstance(obj, dict), "input is not a JSON object")
    unknown = sorted(set(obj) - set(FIELDS))
    require(not unknown, f"unknown input fields: {', '.join(unknown)}")
    for key in ("checkpoint", "log_vkey"):
        require(key in obj, f"missing required field {key}")
    log_vk = parse_vkey(obj["log_vkey"], TYPE_ED25519, "log_vkey")
    text, sigs, origin, size, root = verify_checkpoint(obj["checkpoint"], log_vk, "checkpoint")
    out = [f"checkpoint {origin} size {size} signed by log"]

    wv = obj.get("witness_vkeys", [])
    require(isinstance(wv, list), "witness_vkeys: expected a list")
    witnesses = [parse_vkey(s, TYPE_COSIG_V1, f"witness_vkeys[{i}]") for i, s in enumerate(wv)]
    require(len({w["name"] for w in witnesses}) == len({w["raw"] for w in witnesses}) == len(witnesses),
            "witness_vkeys: duplicate witness name or public key")
    need = get_int(obj, "witnesses_required", 0)
    require(need <= len(witnesses), f"witnesses_required {need} exceeds the {len(witnesses)} witness_vkeys")
    good = verify_cosignatures(text, sigs, witnesses)
    require(len(good) >= need, f"cosignatures: {len(good)} of {len(witnesses)} witnesses cosigned, {need} required")
    if witnesses:
        out.append(f"{len(good)}/{len(witnesses)} witness cosignatures (need {need})")

    if any(k in obj for k in ("leaf", "leaf_index", "inclusion")):
        require(all(k in obj for k in ("leaf", "leaf_index", "inclusion")),
                "leaf, leaf_index and inclusion must be given together")
        idx = get_int(obj, "leaf_index")
        verify_inclusion(idx, size, leaf_hash(b64d(obj["leaf"], "leaf")), get_hashes(obj, "inclusion"), root)
        out.append(f"leaf {idx} included")

    if "old_checkpoint" in obj or "consistency" in obj:
        require("old_checkpoint" in obj and "consistency" in obj,
                "old_checkpoint and consistency must be given together")
        _, _, _, old_size, old_root = verify_checkpoint(obj["old_checkpoint"], log_vk, "old_checkpoint")
        verify_consistency(old_size, size, old_root, root, get_hashes(obj, "consistency"))
        out.append(f"consistent with size {old_size}")
    return "; ".join(out)

def main():
    try:
        print("ok: " + verify(json.loads(sys.stdin.read())))
        return 0
    except Fail as e:
        print(f"error: {e}")
    except ValueError as e:  # includes JSON and UTF-8 decoding errors
        print(f"error: input is not valid JSON: {e}")
    return 1

# ---------------------------------------------------------------- self-test
# Vectors copied verbatim from C2SP/C2SP (commit 5ba5ee83): from signed-note.md, the "Example"
# vkey and note, and the opening poem (its key is not published, so it is only parsed: its text
# contains a blank line); from tlog-cosignature.md, the example cosignature line (its key is not
# published either, so only its layout is checked: its timestamp must be the spec's 1679315147).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi"
             "2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")
SPEC_POEM = ("Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
             "ed \u00e8 subito sera.\n\n"
             "\u2014 quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMou"
             "FSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n")
SPEC_COSIG = ("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
              "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
              "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")

def split_point(n):  # RFC 6962: the largest power of two smaller than n
    return 1 << ((n - 1).bit_length() - 1)

def mth(d):  # RFC 6962 MTH(D[n])
    if len(d) <= 1:
        return leaf_hash(d[0]) if d else hashlib.sha256(b"").digest()
    k = split_point(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))

def path(m, d):  # RFC 6962 PATH(m, D[n])
    if len(d) == 1:
        return []
    k = split_point(len(d))
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]

def subproof(m, d, b):  # RFC 6962 SUBPROOF(m, D[n], b); PROOF(m, D[n]) = SUBPROOF(m, D[n], true)
    if m == len(d):
        return [] if b else [mth(d)]
    k = split_point(len(d))
    return subproof(m, d[:k], b) + [mth(d[k:])] if m <= k else subproof(m - k, d[k:], False) + [mth(d[:k])]

def self_test():
    import subprocess
    pub = lambda sk: sk.public_key().public_bytes_raw()
    vkey = lambda name, t, sk: f"{name}+{key_id(name, t, pub(sk)).hex()}+{b64e(bytes([t]) + pub(sk))}"
    line = lambda name, blob: f"\u2014 {name} {b64e(blob)}\n"
    sign = lambda text, name, sk, kid_sk=None: line(name, key_id(name, 1, pub(kid_sk or sk)) + sk.sign(text.encode()))
    def cosign(text, name, sk, ts, claimed_ts=None, kid_sk=None):
        sig = sk.sign(f"cosignature/v1\ntime {ts}\n".encode() + text.encode())
        return line(name, key_id(name, 4, pub(kid_sk or sk)) + (claimed_ts or ts).to_bytes(8, "big") + sig)
    origin, lk, other = "log.example/test", Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    body = lambda d, org=origin: f"{org}\n{len(d)}\n{b64e(mth(d))}\n"
    cp = lambda text, sk=lk: text + "\n" + sign(text, origin, sk)
    hashes = lambda hs: [b64e(h) for h in hs]
    base, counts = {"log_vkey": vkey(origin, 1, lk)}, {"accepted": 0, "rejected": 0}
    def check(label, want, **kw):  # want None: must verify; else must fail with `want` in the reason
        try:
            verify({**base, **kw})
        except Fail as e:
            if want is None or want not in str(e):
                raise SystemExit(f"self-test FAILED: {label}: rejected with {str(e)!r}, wanted {want!r}")
            counts["rejected"] += 1
            return
        if want is not None:
            raise SystemExit(f"self-test FAILED: {label} was accepted")
        counts["accepted"] += 1

    # The C2SP spec vectors.
    text, sigs = parse_note(SPEC_NOTE, "spec note")
    verify_ed25519_note(text, sigs, parse_vkey(SPEC_VKEY, TYPE_ED25519, "spec vkey"), "spec note")
    try:
        verify_ed25519_note(text.replace("example", "exemple"), sigs, parse_vkey(SPEC_VKEY, 1, "v"), "x")
        raise SystemExit("self-test FAILED: tampered spec note was accepted")
    except Fail:
        pass
    text, sigs = parse_note(SPEC_POEM, "spec poem")
    assert text.endswith(":\n\ned \u00e8 subito sera.\n") and [n for n, _ in sigs] == ["quasimodo.example/salvatore"]
    text, sigs = parse_note(SPEC_COSIG, "spec cosignature example")
    assert parse_checkpoint(text, "spec checkpoint")[1:3] == (20852163, b64d(text.split("\n")[2], "root"))
    assert len(sigs[0][1]) == 76 and int.from_bytes(sigs[0][1][4:12], "big") == 1679315147
    print("self-test: C2SP vectors ok (signed-note example verifies, tampered copy fails, poem parses; "
          "cosignature example has 76-byte blob with time 1679315147)")

    # Trees of sizes 1..20: every inclusion and consistency proof verifies; rewritten history and
    # corrupted proof elements do not.
    leaves = [f"leaf {i}".encode() for i in range(20)]
    for n in range(1, 21):
        d, new = leaves[:n], cp(body(leaves[:n]))
        for i in range(n):
            check(f"inclusion {i}/{n}", None, checkpoint=new, leaf=b64e(d[i]), leaf_index=i,
                  inclusion=hashes(path(i, d)))
        for m in range(n + 1):
            proof = hashes(subproof(m, d, True) if 0 < m < n else [])
            check(f"consistency {m}->{n}", None, checkpoint=new, old_checkpoint=cp(body(d[:m])), consistency=proof)
            for j in sorted({0, m - 1}) if 0 < m < n else []:
                alt = d[:j] + [b"rewritten"] + d[j + 1:m]
                check(f"rewritten leaf {j} {m}->{n}", "consistency", checkpoint=new,
                      old_checkpoint=cp(body(alt)), consistency=proof)
            for k in range(len(proof)):
                check(f"bad element {k} {m}->{n}", "consistency", checkpoint=new, old_checkpoint=cp(body(d[:m])),
                      consistency=proof[:k] + [b64e(bytes(32))] + proof[k + 1:])
    print(f"self-test: trees 1..20: {counts['accepted']} inclusion/consistency proofs verified, "
          f"{counts['rejected']} rewritten-history/corrupted proofs rejected")

    # Named negative cases on a 7-leaf tree (leaf 5, old size 3).
    d = leaves[:7]
    t, flipped = body(d), bytes([mth(d)[0] ^ 1]) + mth(d)[1:]
    ok = cp(t)
    L = dict(checkpoint=ok, leaf=b64e(d[5]), leaf_index=5, inclusion=hashes(path(5, d)))
    C = dict(checkpoint=ok, old_checkpoint=cp(body(d[:3])), consistency=hashes(subproof(3, d, True)))
    check("inclusion baseline", None, **L)
    check("consistency baseline", None, **C)
    cases = [
        ("flipped root hash", "does not verify", dict(checkpoint=ok.replace(b64e(mth(d)), b64e(flipped)))),
        ("flipped root, re-signed", "inclusion", {**L, "checkpoint": cp(f"{origin}\n7\n{b64e(flipped)}\n")}),
        ("signed by another key", "no signature line", dict(checkpoint=cp(t, other))),
        ("other key with log key ID", "does not verify", dict(checkpoint=t + "\n" + sign(t, origin, other, lk))),
        ("wrong log_vkey", "no signature line", dict(checkpoint=ok, log_vkey=vkey(origin, 1, other))),
        ("bad origin", "origin line", dict(checkpoint=cp(body(d, "evil.example/log")))),
        ("tampered body", "does not verify", dict(checkpoint=ok.replace("\n7\n", "\n8\n"))),
        ("extension line added", "does not verify", dict(checkpoint=ok.replace("=\n\n", "=\next\n\n"))),
        ("leading zero in size", "leading zeros", dict(checkpoint=cp(t.replace("\n7\n", "\n07\n")))),
        ("31-byte root", "32 bytes", dict(checkpoint=cp(f"{origin}\n7\n{b64e(bytes(31))}\n"))),
        ("hyphen, not em dash", "em dash", dict(checkpoint=ok.replace("\u2014", "-"))),
        ("no blank line", "blank line", dict(checkpoint=ok.replace("\n\n", "\n"))),
        ("no final newline", "newline", dict(checkpoint=ok[:-1])),
        ("CRLF line ends", "control", dict(checkpoint=ok.replace("\n", "\r\n"))),
        ("vkey with wrong key ID", "derived key ID",
         dict(checkpoint=ok, log_vkey=origin + "+00000000+" + base["log_vkey"].split("+", 2)[2])),
        ("log vkey of type 0x04", "signature type", dict(checkpoint=ok, log_vkey=vkey(origin, 4, lk))),
        ("inclusion, wrong index", "inclusion", {**L, "leaf_index": 4}),
        ("inclusion, wrong leaf", "inclusion", {**L, "leaf": b64e(d[4])}),
        ("inclusion truncated", "too short", {**L, "inclusion": L["inclusion"][:-1]}),
        ("inclusion extended", "too long", {**L, "inclusion": L["inclusion"] + L["inclusion"][:1]}),
        ("inclusion index past size", "not below", {**L, "leaf_index": 7}),
        ("consistency truncated", "too short", {**C, "consistency": C["consistency"][:-1]}),
        ("consistency extended", "too long", {**C, "consistency": C["consistency"] + C["consistency"][:1]}),
        ("same size, different root", "different root", {**C, "old_checkpoint": cp(body(d[1:] + [b"x"])),
                                                          "consistency": []}),
        ("same size, non-empty proof", "must be empty", {**C, "old_checkpoint": ok}),
        ("empty old tree, non-empty proof", "must be empty", {**C, "old_checkpoint": cp(body([]))}),
        ("old larger than new", "larger", {**C, "old_checkpoint": cp(body(leaves[:8])), "consistency": []}),
        ("old signed by another key", "old_checkpoint: no signature", {**C, "old_checkpoint": cp(body(d[:3]), other)}),
        ("consistency without old", "together", dict(checkpoint=ok, consistency=[])),
        ("unknown field", "unknown input", dict(checkpoint=ok, leafindex=5)),
    ]
    # Cosignatures: w1 and w2 of three witnesses cosign.
    ws = [Ed25519PrivateKey.generate() for _ in range(3)]
    names = [f"w{i}.example/witness" for i in (1, 2, 3)]
    W = dict(witness_vkeys=[vkey(nm, 4, w) for nm, w in zip(names, ws)], witnesses_required=1)
    signed = t + "\n" + sign(t, origin, lk)
    cosigned = signed + cosign(t, names[0], ws[0], 1700000000) + cosign(t, names[1], ws[1], 1700000001)
    check("2 of 3 cosigned", None, checkpoint=cosigned, **{**W, "witnesses_required": 2})
    cases += [
        ("quorum not met", "2 of 3 witnesses", dict(checkpoint=cosigned, **{**W, "witnesses_required": 3})),
        ("no cosignatures", "0 of 3 witnesses", dict(checkpoint=signed, **W)),
        ("forged cosignature", "does not verify",
         dict(checkpoint=signed + cosign(t, names[0], ws[2], 1700000000, kid_sk=ws[0]), **W)),
        ("cosignature time altered", "does not verify",
         dict(checkpoint=signed + cosign(t, names[0], ws[0], 1700000000, claimed_ts=1700000009), **W)),
        ("cosignature of another body", "does not verify",
         dict(checkpoint=signed + cosign(body(d[:6]), names[0], ws[0], 1700000000), **W)),
        ("untimestamped cosignature", "expected 76", dict(checkpoint=signed + line(
            names[0], key_id(names[0], 4, pub(ws[0])) + ws[0].sign(t.encode())), **W)),
        ("witness vkey of type 0x01", "signature type",
         dict(checkpoint=cosigned, witness_vkeys=[vkey(names[0], 1, ws[0])])),
        ("duplicate witness", "duplicate", dict(checkpoint=cosigned, witness_vkeys=W["witness_vkeys"][:1] * 2)),
        ("required exceeds witnesses", "exceeds", dict(checkpoint=cosigned, witness_vkeys=W["witness_vkeys"][:1],
                                                       witnesses_required=2)),
    ]
    for label, want, kw in cases:
        check(label, want, **kw)
    print(f"self-test: {len(cases)} named bad inputs rejected with the expected reason")

    # The stdin/stdout interface itself.
    everything = {**L, **C, **W, "checkpoint": cosigned}
    for inp, code in [(json.dumps({**base, **everything}), 0),
                      (json.dumps({**base, "checkpoint": cp(t, other)}), 1), ("not json", 1)]:
        r = subprocess.run([sys.executable, __file__], input=inp, capture_output=True, text=True)
        if r.returncode != code or not r.stdout.startswith(("error: ", "ok: ")[code == 0]) or r.stdout.count("\n") != 1:
            raise SystemExit(f"self-test FAILED: cli gave {r.returncode} {r.stdout!r} {r.stderr!r}")
        print(f"self-test: cli exit {r.returncode}: {r.stdout.strip()}")
    print("self-test: PASS")
    return 0

if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        try:
            sys.exit(self_test())
        except (Fail, AssertionError) as e:
            sys.exit(f"self-test FAILED: {type(e).__name__} {e}")
    sys.exit(main())
