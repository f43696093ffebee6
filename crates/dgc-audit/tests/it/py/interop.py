"""Independent implementations for dgc-audit's interop tests.

Every check here uses only PyPI `securesystemslib` (DSSE), `cryptography` (Ed25519) and
`rfc8785` (JSON canonicalisation), never DGC code, so agreement means the formats are what
other tools expect. Usage: interop.py <command> [args]; results are JSON on stdout, failures
exit non-zero with the reason on stderr.
"""

import base64
import hashlib
import json
import sys

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey


def note_key_id(name: str, pub: bytes) -> bytes:
    """C2SP signed-note key ID: SHA-256(name || 0x0A || 0x01 || pubkey)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + pub).digest()[:4]


def parse_vkey(vkey: str):
    name, key_hash, key_b64 = vkey.split("+", 2)
    raw = base64.b64decode(key_b64, validate=True)
    assert raw[0] == 1 and len(raw) == 33, "not an Ed25519 verifier key"
    pub = raw[1:]
    assert note_key_id(name, pub).hex() == key_hash, "key hash does not match name and key"
    return name, pub


def sslib_key(vkey: str) -> SSlibKey:
    name, pub = parse_vkey(vkey)
    return SSlibKey(note_key_id(name, pub).hex(), "ed25519", "ed25519", {"public": pub.hex()})


def open_note(msg: str, vkey: str) -> str:
    """Verifies a signed note (c2sp.org/signed-note) and returns its text."""
    name, pub = parse_vkey(vkey)
    key_id = note_key_id(name, pub)
    split = msg.rindex("\n\n")
    text, sigs = msg[: split + 1], msg[split + 2 :]
    assert sigs.endswith("\n")
    verified = False
    for line in sigs[:-1].split("\n"):
        assert line.startswith("\u2014 "), line
        sig_name, b64 = line[2:].split(" ", 1)
        raw = base64.b64decode(b64, validate=True)
        if sig_name == name and raw[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], text.encode())
            verified = True
    assert verified, "no signature by the given key"
    return text


def cmd_dsse_verify(envelope_path: str, *vkeys: str) -> dict:
    with open(envelope_path, encoding="utf-8") as f:
        env = Envelope.from_dict(json.load(f))
    keys = [sslib_key(v) for v in vkeys]
    accepted = env.verify(keys, len(keys))
    return {
        "payload_type": env.payload_type,
        "payload_sha256": hashlib.sha256(env.payload).hexdigest(),
        "accepted": sorted(accepted),
    }


def cmd_dsse_sign(name: str) -> dict:
    priv = Ed25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = SSlibKey.from_crypto(priv.public_key(), keyid=note_key_id(name, pub).hex())
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "x", "digest": {"sha256": hashlib.sha256(b"x").hexdigest()}}],
        "predicateType": "https://example.com/python/v1",
        "predicate": {"signed_by": "securesystemslib"},
    }
    env = Envelope(json.dumps(statement).encode(), "application/vnd.in-toto+json", {})
    env.sign(CryptoSigner(priv, key))
    return {"envelope": env.to_dict(), "public_key": pub.hex(), "key_id": key.keyid}


def cmd_note_verify(note_path: str, vkey: str) -> dict:
    with open(note_path, encoding="utf-8") as f:
        text = open_note(f.read(), vkey)
    origin, size, root = text.split("\n")[:3]
    return {"origin": origin, "size": int(size), "root": root}


def cmd_note_sign(name: str, text_path: str) -> dict:
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    priv = Ed25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = note_key_id(name, pub)
    sig = base64.b64encode(key_id + priv.sign(text.encode())).decode()
    key_b64 = base64.b64encode(b"\x01" + pub).decode()
    vkey = f"{name}+{key_id.hex()}+{key_b64}"
    return {"vkey": vkey, "note": f"{text}\n\u2014 {name} {sig}\n"}


def cmd_jcs(values_path: str) -> list:
    with open(values_path, encoding="utf-8") as f:
        values = json.load(f)
    return [base64.b64encode(rfc8785.dumps(v)).decode() for v in values]


def main() -> None:
    commands = {
        "dsse-verify": cmd_dsse_verify,
        "dsse-sign": cmd_dsse_sign,
        "note-verify": cmd_note_verify,
        "note-sign": cmd_note_sign,
        "jcs": cmd_jcs,
    }
    cmd, *args = sys.argv[1:]
    json.dump(commands[cmd](*args), sys.stdout)


if __name__ == "__main__":
    main()
