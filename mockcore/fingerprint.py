"""What a stored fleet must have been written for: the configuration its state depends on, compared by flag.

Shared by the state stores (mockcore.persistence, mockcore.pgstore): a store refuses a fleet written for another
configuration (other instances, seed, keys, API key or admin) instead of loading a fleet that cannot fit.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mockcore.config import FleetConfig


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(config: FleetConfig) -> dict[str, Any]:
    """What a state file must have been written for: everything of the configuration that the fleet's state
    depends on (instance names, seed, keys, API key, admin). Secrets are kept as hashes; order is irrelevant."""
    return {
        "instances": sorted(config.instances),
        "seed": config.seed,
        "keys": sorted([k.key or "", k.slots, k.days] for k in config.resolved_keys()),
        "apikey_sha256": _sha256(config.resolved_apikey),
        "admin": config.admin_user,
        "admin_password_sha256": _sha256(config.admin_password),
    }


def _describe_keys(keys: Any) -> str:
    try:
        return (
            ", ".join(f"{key} ({slots} slot{'' if slots == 1 else 's'}, {days} days)" for key, slots, days in keys)
            or "none"
        )
    except (TypeError, ValueError):
        return repr(keys)


def fingerprint_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between the configuration a file was written for and this run's, by command-line flag."""
    differences = []
    if stored.get("instances") != current["instances"]:
        was = ", ".join(map(str, stored.get("instances") or [])) or "none"
        differences.append(
            f"--instance: the file is for instances {was}, this run has {', '.join(current['instances'])}"
        )
    if stored.get("seed") != current["seed"]:
        differences.append(f"--seed: the file is for seed {stored.get('seed')!r}, this run has {current['seed']!r}")
    if stored.get("keys") != current["keys"]:
        differences.append(
            f"--key: the file is for keys {_describe_keys(stored.get('keys'))}, "
            f"this run has {_describe_keys(current['keys'])}"
        )
    if stored.get("apikey_sha256") != current["apikey_sha256"]:
        differences.append("--apikey: the configured API key differs")
    if stored.get("admin") != current["admin"]:
        differences.append(f"--admin: the file is for user {stored.get('admin')!r}, this run has {current['admin']!r}")
    elif stored.get("admin_password_sha256") != current["admin_password_sha256"]:
        differences.append("--admin: the admin password differs")
    unknown = set(stored) - set(current)
    if unknown:
        differences.append(f"settings this mockcore does not know: {', '.join(sorted(unknown))}")
    return differences
