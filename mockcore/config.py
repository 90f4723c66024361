"""A fleet's configuration, parsed once: what `mockcore serve` and `MockFleet` take, with the same defaults and the
same errors (docs/guides/test-double.md). `parse_fleet` checks every argument and answers a `FleetSetup`;
`mockcore.fleet.Fleet.build` makes the fleet from it. A bad argument raises ConfigError, a ValueError that names
the option it is about, so the CLI can name its flag and `MockFleet` its parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mockcore.catalogue import Catalogue
from mockcore.identity import ACTIVATION_KEY_RE, activation_key, apikey, is_valid_apikey
from mockcore.journal import DEFAULT_CAP as DEFAULT_JOURNAL_CAP
from mockcore.journal import MAX_CAP as MAX_JOURNAL_CAP
from mockcore.overrides import load_overrides
from mockcore.rules import LATEST_PROFILE, PROFILES, Profile

DEFAULT_VERSION = "5.6.1"
ACTIVATION_FACE = "activation_server"  # the activation server's face name, next to the instances' names
INSTANCE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
MAX_SLOTS = 100_000
MAX_DAYS = 36_500
DEFAULT_SLOTS, DEFAULT_DAYS = 1, 365


class ConfigError(ValueError):
    """A configuration argument that cannot be used; `option` names it (instances, keys, apikey, admin, ...)."""

    def __init__(self, option: str, text: str) -> None:
        super().__init__(text)
        self.option = option


@dataclass(frozen=True)
class KeySpec:
    key: str | None = None  # None: derived from the seed
    slots: int = DEFAULT_SLOTS
    days: int = DEFAULT_DAYS


@dataclass(frozen=True)
class FleetConfig:
    instances: tuple[str, ...] = ("core",)
    keys: tuple[KeySpec, ...] = (KeySpec(),)
    seed: str = "0"
    apikey: str | None = None  # None: derived from the seed
    admin_user: str = "admin"
    admin_password: str = "admin"
    version: str = ""  # the emulated `/version`; empty: the profile's (an overrides file's `version` sets it)
    profile: str = LATEST_PROFILE  # the line of Core emulated (mockcore.rules.PROFILES)

    def __post_init__(self) -> None:
        """The emulated version follows the profile unless it was given: once set, it stays what it was given
        (`replace` runs this again, and must not turn a given 5.6.1 under the 4.18 profile into 4.18.0)."""
        emulated = parse_profile(self.profile)
        if not self.version:
            object.__setattr__(self, "version", emulated.version)

    @property
    def resolved_apikey(self) -> str:
        return self.apikey or apikey(self.seed)

    def resolved_keys(self) -> list[KeySpec]:
        return [
            KeySpec(spec.key or activation_key(self.seed, index), spec.slots, spec.days)
            for index, spec in enumerate(self.keys)
        ]


@dataclass(frozen=True)
class FleetSetup:
    """Everything a fleet is built from: the configuration, the error catalogue as served, the journal's cap."""

    config: FleetConfig = field(default_factory=FleetConfig)
    catalogue: Catalogue = field(default_factory=Catalogue)
    journal_cap: int = DEFAULT_JOURNAL_CAP


KeyArgument = KeySpec | str | tuple[str | None] | tuple[str | None, int] | tuple[str | None, int, int]


def parse_key(text: str) -> KeySpec:
    """`KEY[:SLOTS[:DAYS]]`; an empty KEY is the one derived from the seed."""
    key, *rest = text.split(":")
    if len(rest) > 2 or not all(part.isdigit() for part in rest):
        raise ConfigError("keys", f"{text!r}: expected KEY[:SLOTS[:DAYS]] with whole numbers")
    slots = int(rest[0]) if rest else DEFAULT_SLOTS
    days = int(rest[1]) if len(rest) > 1 else DEFAULT_DAYS
    return key_spec(key or None, slots, days)


def key_spec(key: str | None, slots: object, days: object) -> KeySpec:
    if key is not None and not (isinstance(key, str) and ACTIVATION_KEY_RE.fullmatch(key)):
        raise ConfigError("keys", f"{key!r}: an activation key is seven groups of four letters or digits joined by '-'")
    for name, value, top in (("slots", slots, MAX_SLOTS), ("days", days, MAX_DAYS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ConfigError(
                "keys", f"{key or 'the seed key'}: {name} must be a whole number from 0 to {top}, not {value!r}"
            )
    return KeySpec(key, slots, days)  # type: ignore[arg-type]


def parse_keys(keys: Iterable[KeyArgument] | KeyArgument | None, default: tuple[KeySpec, ...]) -> tuple[KeySpec, ...]:
    if keys is None:
        return default
    if isinstance(keys, str | KeySpec):
        keys = [keys]
    specs: list[KeySpec] = []
    for item in keys:  # type: ignore[union-attr]
        if isinstance(item, KeySpec):
            specs.append(key_spec(item.key, item.slots, item.days))
        elif isinstance(item, str):
            specs.append(parse_key(item))
        elif isinstance(item, tuple) and 1 <= len(item) <= 3:
            slots = item[1] if len(item) > 1 else DEFAULT_SLOTS
            days = item[2] if len(item) > 2 else DEFAULT_DAYS
            specs.append(key_spec(item[0] or None, slots, days))
        else:
            raise ConfigError("keys", f"{item!r}: a key is a KeySpec, 'KEY[:SLOTS[:DAYS]]' or (key, slots[, days])")
    if not specs:
        raise ConfigError("keys", "a fleet needs at least one activation key")
    return tuple(specs)


def parse_instances(instances: Sequence[str] | str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in instances.split(",")) if isinstance(instances, str) else tuple(instances)
    if not names:
        raise ConfigError("instances", "a fleet needs at least one instance")
    for name in names:
        if not isinstance(name, str) or not INSTANCE_NAME_RE.fullmatch(name):
            raise ConfigError(
                "instances",
                f"{name!r}: an instance name is 1-63 letters, digits, '_', '.' or '-', the first a letter or a digit",
            )
        if name == ACTIVATION_FACE:
            raise ConfigError("instances", f"{name!r} is the activation server's name; choose another instance name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError("instances", f"instance names must be unique: {', '.join(duplicates)}")
    return names


def parse_apikey(key: str | None) -> str | None:
    if key is not None and not (isinstance(key, str) and is_valid_apikey(key)):
        raise ConfigError(
            "apikey",
            f"{key!r}: an API key is 36 chars of 0-9a-f with at least 10 letters and 10 digits and no more than 3 "
            "letters or 3 digits in a row",
        )
    return key


def parse_admin(admin: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(admin, str):
        user, sep, password = admin.partition(":")
    else:
        pair = tuple(admin)
        user, sep, password = (pair[0], ":", pair[1]) if len(pair) == 2 else ("", "", "")
    if not sep or not user or not password or not isinstance(user, str) or not isinstance(password, str):
        raise ConfigError("admin", f"{admin!r}: the admin account is 'USER:PASSWORD' or (user, password)")
    return user, password


def parse_profile(profile: str) -> Profile:
    if profile not in PROFILES:
        raise ConfigError("profile", f"{profile!r}: a profile is one of {', '.join(PROFILES)}")
    return PROFILES[profile]


def parse_fleet(
    instances: Sequence[str] | str = ("core",),
    keys: Iterable[KeyArgument] | KeyArgument | None = None,
    *,
    default_keys: tuple[KeySpec, ...] = (KeySpec(),),
    seed: str | int = "0",
    apikey: str | None = None,
    admin: str | tuple[str, str] = ("admin", "admin"),
    overrides: str | Path | None = None,
    journal_cap: int = DEFAULT_JOURNAL_CAP,
    profile: str = LATEST_PROFILE,
) -> FleetSetup:
    """Every argument checked, in this order; the first bad one raises ConfigError."""
    names = parse_instances(instances)
    specs = parse_keys(keys, default_keys)
    user, password = parse_admin(admin)
    config = FleetConfig(
        instances=names,
        keys=specs,
        seed=str(seed),
        apikey=parse_apikey(apikey),
        admin_user=user,
        admin_password=password,
        profile=parse_profile(profile).name,
    )
    resolved = [spec.key for spec in config.resolved_keys()]
    if len(set(resolved)) != len(resolved):
        raise ConfigError("keys", "activation keys must be unique")
    if isinstance(journal_cap, bool) or not isinstance(journal_cap, int) or not 0 <= journal_cap <= MAX_JOURNAL_CAP:
        raise ConfigError("journal_cap", f"the journal cap is a whole number from 0 to {MAX_JOURNAL_CAP}")
    catalogue = Catalogue()
    if overrides is not None:
        try:
            loaded = load_overrides(Path(overrides))
        except ValueError as exc:
            raise ConfigError("overrides", str(exc)) from exc
        catalogue = loaded.catalogue()
        if loaded.version:
            config = replace(config, version=loaded.version)
    return FleetSetup(config, catalogue, journal_cap)
