#!/usr/bin/env python3
"""Makes tests/vectors/standard_v1a.json: Standard Webhooks `v1a` (ed25519)
signatures made by another implementation (Python's `cryptography`), which
tests/auth_standard_v1a.rs verifies with this crate.

Run once, from the crate root, and commit the output (CI needs no Python):

    pip install cryptography
    python3 tests/vectors/make_v1a_vectors.py > tests/vectors/standard_v1a.json

The seeds are fixed, so the output is the same on every run (ed25519
signatures are deterministic).
"""
import base64
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def vector(seed: bytes, msg_id: str, timestamp: int, body: bytes) -> dict:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = key.sign(signed)
    return {
        "secret_key": "whsk_" + b64(seed),
        "secret_key_pair": "whsk_" + b64(seed + public),
        "public_key": "whpk_" + b64(public),
        "id": msg_id,
        "timestamp": timestamp,
        "body": body.decode(),
        "signature": "v1a," + b64(signature),
    }


vectors = [
    vector(bytes(range(1, 33)), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
           b'{"test": 2432232314}'),
    vector(bytes([0x42] * 32), "msg_2", 1725524713,
           b'{"accountId":1234,"events":[{"eventId":"29123ec1","eventName":"COURSE_ENROLLMENT",'
           b'"timestamp":1725524713,"data":{"userId":1234567}}]}'),
    vector(bytes(range(200, 232)), "msg_empty_body", 1700000000, b""),
    vector(bytes(range(32, 0, -1)), "msg_unicode", 1800000000,
           '{"name":"Zoë ✓ 学习"}'.encode()),
]
print(json.dumps(vectors, indent=2, ensure_ascii=False))
