#!/usr/bin/env python3
"""Verify a DGC attestation bundle with standard tools only.

    pip install 'securesystemslib[crypto]' rfc8785
    python3 verify_bundle.py bundle.json 'dgc.local/<instance>+<keyid>+<base64 key>'

The verifier key is the instance's signed-note key (GET /v1/audit/keys, `vkey`), obtained
out of band. Exits non-zero, with the reason, if anything does not verify.
"""

import base64
import hashlib
import json
import sys

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

RECORD_TYPE = "application/vnd.dgc.audit-record.v1+json"
INTOTO_TYPE = "application/vnd.in-toto+json"


def key_id(name: str, pub: bytes) -> bytes:
    # c2sp.org/signed-note: SHA-256(name || 0x0A || 0x01 || public key)[:4]
    return hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]


def parse_vkey(vkey: str) -> tuple[str, bytes]:
    name, kid, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1 or key_id(name, raw[1:]).hex() != kid:
        raise ValueError(f"malformed verifier key {vkey}")
    return name, raw[1:]


def sslib_key(vkey: str) -> SSlibKey:
    # DGC's DSSE keyid is the signed-note key ID in hex.
    name, pub = parse_vkey(vkey)
    return SSlibKey(key_id(name, pub).hex(), "ed25519", "ed25519", {"public": pub.hex()})


def open_checkpoint(note: str, vkey: str) -> tuple[str, int, bytes]:
    """c2sp.org/signed-note + c2sp.org/tlog-checkpoint: returns (origin, size, root)."""
    name, pub = parse_vkey(vkey)
    split = note.rindex("\n\n")
    text, sig_lines = note[: split + 1], note[split + 2 :].splitlines()
    for line in sig_lines:
        sig_name, b64 = line.removeprefix("\u2014 ").split(" ", 1)
        raw = base64.b64decode(b64, validate=True)
        if sig_name == name and raw[:4] == key_id(name, pub):
            Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], text.encode())
            origin, size, root = text.split("\n")[:3]
            if origin != name:
                raise ValueError("checkpoint origin is not the key's name")
            return origin, int(size), base64.b64decode(root, validate=True)
    raise ValueError("checkpoint is not signed by the trusted key")


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        raise ValueError("leaf index beyond tree size")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("inclusion proof too short")
    return r


def verify_bundle(bundle: dict, vkey: str) -> dict:
    # 1. The checkpoint (signed tree head) is signed by the trusted instance key.
    origin, size, root = open_checkpoint(bundle["checkpoint"], vkey)
    # 2. The log record is leaf `log_index` of that tree.
    record = base64.b64decode(bundle["record"], validate=True)
    leaf = hashlib.sha256(b"\x00" + record).digest()
    proof = [base64.b64decode(p, validate=True) for p in bundle["inclusion_proof"]]
    if bundle["tree_size"] != size or root_from_inclusion(bundle["log_index"], size, leaf, proof) != root:
        raise ValueError("the record is not in the checkpointed tree")
    # 3. The record is a DSSE envelope, signed by the instance key it names, for this position.
    rec = Envelope.from_dict(json.loads(record))
    body = json.loads(rec.payload)
    entry = body["entry"]
    if (rec.payload_type, body["origin"], body["index"], entry["type"]) != (
        RECORD_TYPE, origin, bundle["log_index"], "attestation"
    ) or entry["attestation_id"] != bundle["attestation_id"]:
        raise ValueError("the record is not this attestation's log entry")
    if parse_vkey(entry["instance_key"])[0] != origin:
        raise ValueError("the record names a key of another log")
    rec.verify([sslib_key(entry["instance_key"])], 1)
    # 4. The envelope is the one the record commits to (digest of its RFC 8785 form) ...
    if hashlib.sha256(rfc8785.dumps(bundle["envelope"])).hexdigest() != entry["envelope_sha256"]:
        raise ValueError("the envelope is not the one the log committed to")
    att = Envelope.from_dict(json.loads(json.dumps(bundle["envelope"])))
    if att.payload_type != INTOTO_TYPE or hashlib.sha256(att.payload).hexdigest() != entry["payload_sha256"]:
        raise ValueError("the statement is not the one the log committed to")
    # 5. ... and carries valid signatures by both the agent key and the instance key.
    att.verify([sslib_key(entry["agent_key"]), sslib_key(entry["instance_key"])], 2)
    statement = json.loads(att.payload)
    if statement["_type"] != "https://in-toto.io/Statement/v1":
        raise ValueError("not an in-toto Statement v1")
    return {
        "attestation_id": bundle["attestation_id"],
        "log": origin,
        "log_index": bundle["log_index"],
        "tree_size": size,
        "agent": statement["predicate"]["agent"]["id"],
        "predicate_type": statement["predicateType"],
        "subject": statement["subject"],
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        print(json.dumps(verify_bundle(json.load(f), sys.argv[2]), indent=2))
