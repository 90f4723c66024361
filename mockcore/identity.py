"""Identifier formats (docs/behaviour.md, "The world"; docs/responses.md), and the deterministic ids derived
from an instance name and a seed."""

from __future__ import annotations

import hashlib
import re

DEPLOYMENT_RE = re.compile(r"MSCL[0-9a-f]{32}")
ACTIVATION_KEY_RE = re.compile(r"[0-9A-Za-z]{4}(?:-[0-9A-Za-z]{4}){6}")
_APIKEY_RE = re.compile(r"[0-9a-f]{36}")
_KEY_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


def deployment_id(seed: str, instance: str) -> str:
    return "MSCL" + _digest("deployment", seed, instance).hex()[:32]


def scan_id(seed: str, instance: str, counter: int) -> str:
    return _digest("scan", seed, instance, counter).hex()[:32]


def licence_secret(seed: str) -> bytes:
    return _digest("licence-signature", seed)


def activation_key(seed: str, index: int) -> str:
    raw = _digest("activation-key", seed, index)
    chars = "".join(_KEY_ALPHABET[b % len(_KEY_ALPHABET)] for b in raw[:28])
    return "-".join(chars[i : i + 4] for i in range(0, 28, 4))


def is_valid_apikey(key: str) -> bool:
    """The documented API key format: 36 chars of 0-9a-f, at least 10 letters and 10 digits, and no more than
    three letters or three digits in a row."""
    if not _APIKEY_RE.fullmatch(key):
        return False
    letters = sum(c.isalpha() for c in key)
    if letters < 10 or len(key) - letters < 10:
        return False
    return not re.search(r"[a-f]{4}|[0-9]{4}", key)


def apikey(seed: str) -> str:
    """A valid API key derived from the seed: pairs of digits and letters alternate, so the run rule holds."""
    raw = _digest("apikey", seed) * 2
    key = "".join(("abcdef"[b % 6] if (i // 2) % 2 else "0123456789"[b % 10]) for i, b in enumerate(raw[:36]))
    assert is_valid_apikey(key)
    return key
