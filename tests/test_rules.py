"""The decision core without sockets: every decision of mockcore.rules, table-driven, by value and at its edges.
Fast (no fleet, no HTTP): each case builds a licence and the facts it needs and asks one decision."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mockcore.accounts import Accounts, User
from mockcore.catalogue import ErrorCode, LicenceError
from mockcore.lifecycle import (
    TRANSITIONS,
    ActivationKey,
    ImpossibleLicence,
    Licence,
    LicenceFile,
    LicenceState,
    LicenceTerms,
    Operation,
    SlotChange,
)
from mockcore.rules import RULES, ActivationRefused, Decision, Facts, NotActivated, parse_quantity

U, A, BON, BOFF = (
    LicenceState.UNLICENSED,
    LicenceState.ACTIVE,
    LicenceState.BACKUP_ONLINE,
    LicenceState.BACKUP_OFFLINE,
)
K1 = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"
K2 = "HHHH-IIII-JJJJ-KKKK-LLLL-MMMM-NNNN"
ME, PROD, OTHER = "MSCL" + "1" * 32, "MSCL" + "2" * 32, "MSCL" + "3" * 32
NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
EXPIRES = date(2027, 2, 1)
T1, T2 = LicenceTerms(K1, EXPIRES), LicenceTerms(K2, EXPIRES)


def facts(*keys: ActivationKey, now: datetime = NOW) -> Facts:
    return Facts(now, {key.key: key for key in keys})


def key1(*holders: str, slots: int = 2, terms: LicenceTerms = T1) -> ActivationKey:
    return ActivationKey(terms, slots, holders)


def licence(state: LicenceState, *, online: bool = True, terms: LicenceTerms = T1) -> Licence:
    if state is U:
        return Licence()
    if state is A:
        return Licence(A, terms, online)
    return Licence(state, terms, state is BON, PROD)


def refused(code: ErrorCode) -> pytest.RaisesContext[LicenceError]:
    return pytest.raises(LicenceError, match=code.value)


def decide(operation: Operation, lic: Licence, world: Facts, reachable: bool = True) -> Decision:
    """The operation with arguments that pass every rule but the state's."""
    file_of_me = LicenceFile(T1, ME, NOW.isoformat())
    file_of_prod = LicenceFile(T1, PROD, NOW.isoformat())
    return {
        Operation.ACTIVATE: lambda: RULES.activate(lic, ME, K1, 1, world, reachable),
        Operation.UPLOAD: lambda: RULES.upload(lic, ME, file_of_me, world),
        Operation.REGISTER_ONLINE: lambda: RULES.register_online(lic, ME, K1, PROD, world, reachable),
        Operation.REGISTER_OFFLINE: lambda: RULES.register_offline(lic, ME, file_of_prod, world),
        Operation.UNREGISTER: lambda: RULES.unregister(lic),
        Operation.NOMINATE: lambda: RULES.nominate(lic, ME, world, reachable),
        Operation.DEACTIVATE: lambda: RULES.deactivate(lic, ME, world, reachable),
    }[operation]()


CELLS = [(op, state, outcome) for op, row in TRANSITIONS.items() for state, outcome in row.items()]


@pytest.mark.parametrize(("operation", "state", "outcome"), CELLS, ids=[f"{o.value}-{s.value}" for o, s, _ in CELLS])
def test_every_cell_of_the_transition_table(operation: Operation, state: LicenceState, outcome: object) -> None:
    world = facts(key1(PROD, ME if state is A else OTHER, slots=3))
    lic = licence(state)
    if isinstance(outcome, ErrorCode):
        with refused(outcome):
            decide(operation, lic, world)
        with refused(outcome):  # the state rule comes before reachability
            decide(operation, lic, world, reachable=False)
    else:
        assert decide(operation, lic, world).licence.state is outcome


@pytest.mark.parametrize(
    "operation", [Operation.ACTIVATE, Operation.REGISTER_ONLINE, Operation.NOMINATE, Operation.DEACTIVATE]
)
def test_online_operations_need_the_activation_server(operation: Operation) -> None:
    state = {Operation.ACTIVATE: U, Operation.REGISTER_ONLINE: U, Operation.NOMINATE: BON}.get(operation, A)
    with refused(ErrorCode.ACTIVATION_UNREACHABLE):
        decide(operation, licence(state), facts(key1(PROD, ME)), reachable=False)


def test_offline_deactivation_needs_no_activation_server_and_keeps_the_slot() -> None:
    decision = RULES.deactivate(licence(A, online=False), ME, facts(key1(ME)), reachable=False)
    assert decision == Decision(Licence())


def test_online_deactivation_frees_the_slot_and_keeps_the_key() -> None:
    decision = RULES.deactivate(licence(A), ME, facts(key1(ME)), reachable=True)
    assert decision == Decision(Licence(terms=T1), (SlotChange(K1, release=ME),))
    assert decision.licence.reactivate


# Activation: slots and the activation server's answers


def test_activation_takes_a_free_slot_and_reactivation_keeps_it() -> None:
    first = RULES.activate(Licence(), ME, K1, 1, facts(key1(slots=1)), True)
    assert first.slots == (SlotChange(K1, take=ME),)
    again = RULES.activate(licence(A), ME, K1, 1, facts(key1(ME, slots=1)), True)
    assert again.slots == ()


def test_activation_without_a_free_slot_is_no_slot() -> None:
    with refused(ErrorCode.NO_SLOT):
        RULES.activate(Licence(), ME, K1, 1, facts(key1(PROD, slots=1)), True)
    with refused(ErrorCode.NO_SLOT):
        RULES.activate(Licence(), ME, K1, 1, facts(key1(slots=0)), True)


@pytest.mark.parametrize(
    ("key", "world", "text"),
    [
        (K2, facts(key1()), "not known"),
        (K1, facts(key1(), now=datetime(2027, 2, 2, tzinfo=UTC)), "has expired"),
    ],
)
def test_activation_failures_carry_the_activation_servers_text(key: str, world: Facts, text: str) -> None:
    with pytest.raises(LicenceError, match=ErrorCode.ACTIVATION_FAILED.value) as failed:
        RULES.activate(Licence(), ME, key, 1, world, True)
    assert text in str(failed.value.text)


def test_a_key_is_valid_through_its_expiration_day() -> None:
    last_day = datetime(2027, 2, 1, 23, 59, tzinfo=UTC)
    assert RULES.activate(Licence(), ME, K1, 1, facts(key1(), now=last_day), True).licence.state is A


def test_moving_to_another_key_frees_the_old_online_slot_only() -> None:
    world = facts(key1(ME), ActivationKey(T2, 1))
    moved = RULES.activate(licence(A), ME, K2, 1, world, True)
    assert set(moved.slots) == {SlotChange(K2, take=ME), SlotChange(K1, release=ME)}
    offline = RULES.activate(licence(A, online=False), ME, K2, 1, world, True)
    assert offline.slots == (SlotChange(K2, take=ME),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (1000, 1000), ("7", 7), (0, None), (1001, None), (True, None), ("-1", None), (" 1", None), (1.0, None)],
)
def test_quantity_is_a_whole_number_from_1_to_1000(value: object, expected: int | None) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize(
    ("key", "deployment", "quantity", "advice"),
    [("nope", ME, 1, "Activation Key"), (K1, "nope", 1, "Deployment ID"), (K1, ME, 0, "quantity")],
)
def test_the_activation_server_checks_its_parameters_first(
    key: str, deployment: str, quantity: int, advice: str
) -> None:
    with pytest.raises(ActivationRefused) as refusal:
        RULES.obtain(key, deployment, quantity, facts(key1()))
    assert refusal.value.reason == "Invalid parameter" and advice in refusal.value.text


def test_release_frees_only_a_held_slot() -> None:
    assert RULES.release(K1, ME, facts(key1(ME))) == SlotChange(K1, release=ME)
    with pytest.raises(NotActivated):
        RULES.release(K1, ME, facts(key1(PROD)))


# Backups and nomination


@pytest.mark.parametrize(
    ("key", "production", "code"),
    [(K2, PROD, ErrorCode.BACKUP_KEY), (K1, OTHER, ErrorCode.BACKUP_PRODUCTION), (K1, ME, ErrorCode.BACKUP_PRODUCTION)],
)
def test_online_registration_needs_a_known_key_and_a_production_holding_it(
    key: str, production: str, code: ErrorCode
) -> None:
    with refused(code):
        RULES.register_online(Licence(), ME, key, production, facts(key1(PROD, ME)), True)


def test_registration_takes_no_slot() -> None:
    assert RULES.register_online(Licence(), ME, K1, PROD, facts(key1(PROD)), True).slots == ()


@pytest.mark.parametrize(
    ("holders", "slots", "change"),
    [
        ((PROD,), 1, SlotChange(K1, release=PROD, take=ME)),  # the production's slot is handed over, in place
        ((PROD, ME), 2, SlotChange(K1, release=PROD)),  # a stale slot of its own: the production's is freed
        ((ME,), 1, None),  # it holds one already
        ((OTHER,), 2, SlotChange(K1, take=ME)),  # a free one
    ],
)
def test_nomination_gets_a_slot(holders: tuple[str, ...], slots: int, change: SlotChange | None) -> None:
    decision = RULES.nominate(licence(BON), ME, facts(key1(*holders, slots=slots)), True)
    assert decision.slots == (() if change is None else (change,))
    assert decision.licence == Licence(A, T1, online=True)


def test_nomination_without_any_slot_is_no_slot() -> None:
    with refused(ErrorCode.NO_SLOT):
        RULES.nominate(licence(BON), ME, facts(key1(OTHER, slots=1)), True)


def test_a_hand_over_keeps_the_holders_order() -> None:
    assert key1(OTHER, PROD).changed(SlotChange(K1, release=PROD, take=ME)).holders == (OTHER, ME)


# Licence files


def test_a_file_is_usable_through_its_last_day_and_for_its_own_deployment_only() -> None:
    mine = LicenceFile(T1, ME, NOW.isoformat())
    last_day = facts(now=datetime(2027, 2, 1, 23, 0, tzinfo=UTC))
    assert RULES.upload(Licence(), ME, mine, last_day).licence == Licence(A, T1, online=False)
    with refused(ErrorCode.INVALID_LICENSE):
        RULES.upload(Licence(), ME, mine, facts(now=datetime(2027, 2, 2, tzinfo=UTC)))
    with refused(ErrorCode.INVALID_LICENSE):
        RULES.upload(Licence(), ME, LicenceFile(T1, PROD, ""), facts())
    with refused(ErrorCode.INVALID_LICENSE):
        RULES.upload(Licence(), ME, None, facts())  # unsigned, edited, not a licence file


def test_an_offline_backup_needs_another_deployments_file() -> None:
    decision = RULES.register_offline(Licence(), ME, LicenceFile(T1, PROD, ""), facts())
    assert decision.licence == Licence(BOFF, T1, online=False, production=PROD)
    with refused(ErrorCode.INVALID_LICENSE):
        RULES.register_offline(Licence(), ME, LicenceFile(T1, ME, ""), facts())


# What a request sees, scans, engines, readiness, the licence view


def test_an_online_production_whose_slot_is_gone_has_lost_its_licence() -> None:
    assert RULES.seen(licence(A), ME, facts(key1())) == Licence(terms=T1)
    assert RULES.seen(licence(A), ME, facts(key1(ME))) == licence(A)
    assert RULES.seen(licence(A, online=False), ME, facts(key1())) == licence(A, online=False)


@pytest.mark.parametrize(
    ("lic", "size", "today", "code"),
    [
        (licence(A), 0, NOW, ErrorCode.EMPTY_FILE),
        (licence(BON), 5, NOW, ErrorCode.SCAN_BACKUP),
        (Licence(), 5, NOW, ErrorCode.SCAN_UNLICENSED),
        (licence(A), 5, datetime(2027, 2, 2, tzinfo=UTC), ErrorCode.EXPIRED_SCAN),
        (licence(A), 5, datetime(2027, 2, 1, 23, 59, tzinfo=UTC), None),
    ],
)
def test_scans(lic: Licence, size: int, today: datetime, code: ErrorCode | None) -> None:
    if code is None:
        RULES.scan(lic, size, facts(now=today))
    else:
        with refused(code):
            RULES.scan(lic, size, facts(now=today))


def test_engines_and_readiness() -> None:
    with refused(ErrorCode.ENGINES_UNLICENSED):
        RULES.change_engine(Licence(), known=True)
    with refused(ErrorCode.NOT_FOUND):
        RULES.change_engine(licence(A), known=False)
    assert not RULES.engines_listed(Licence()) and RULES.engines_listed(licence(BOFF))
    assert RULES.readiness(Licence(), facts()) == "invalid"
    assert RULES.readiness(licence(A), facts()) == "ok"
    assert RULES.readiness(licence(A), facts(now=datetime(2027, 2, 2, tzinfo=UTC))) == "expired"


def test_the_licence_view() -> None:
    assert RULES.licence_view(Licence(), ME, facts()) == {"deployment": ME, "deployment_id": ME}
    assert RULES.licence_view(Licence(terms=T1), ME, facts())["reactivate"] is True
    view = RULES.licence_view(licence(A), ME, facts(now=NOW + timedelta(days=22)))
    assert view["days_left"] == 0 and view["expiration"] == "02/01/2027" and view["online_activated"] is True
    assert RULES.licence_view(licence(A), ME, facts(now=NOW + timedelta(days=30)))["days_left"] == 0
    assert RULES.licence_view(licence(A), ME, facts())["days_left"] == 22


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ((A, None, True, None), "terms"),
        ((BON, T1, True, None), "production"),
        ((A, T1, True, PROD), "production"),
        ((BOFF, T1, True, PROD), "online"),
        ((BON, T1, False, PROD), "online"),
        ((U, T1, True, None), "online"),
    ],
)
def test_a_licence_that_cannot_exist_cannot_be_built(arguments: tuple[object, ...], field: str) -> None:
    with pytest.raises(ImpossibleLicence) as impossible:
        Licence(*arguments)  # type: ignore[arg-type]
    assert impossible.value.field == field


def test_an_offline_backup_cannot_be_nominated_even_directly() -> None:
    with refused(ErrorCode.NOMINATE_OFFLINE):
        licence(BOFF).nominated()


# Authentication, accounts and request shapes


def accounts() -> Accounts:
    found = Accounts("admin", "admin", APIKEY)
    found.users[3] = User(3, "ops", "pw", ["2"], api_key=OWN_KEY)
    found.sessions["s1"] = 3
    return found


APIKEY = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"
OWN_KEY = "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a"
FREE_KEY = "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f"


@pytest.mark.parametrize(
    ("key", "required", "who", "code"),
    [
        (None, True, None, ErrorCode.ACCESS_MISSING),
        (None, False, None, None),
        (APIKEY, True, "admin", None),
        ("s1", True, "ops", None),
        (OWN_KEY, True, "ops", None),
        ("nobody", False, None, ErrorCode.ACCESS),
    ],
)
def test_the_caller(key: str | None, required: bool, who: str | None, code: ErrorCode | None) -> None:
    if code is not None:
        with refused(code):
            RULES.caller(key, accounts(), required=required)
        return
    user = RULES.caller(key, accounts(), required=required)
    assert (user.name if user else None) == who


def test_login_logout_and_passwords() -> None:
    found = accounts()
    assert RULES.login("ops", "pw", found).id == 3
    with refused(ErrorCode.LOGIN):
        RULES.login("ops", "wrong", found)
    RULES.logout("s1", found)
    for not_a_session in (APIKEY, OWN_KEY):
        with refused(ErrorCode.LOGOUT):
            RULES.logout(not_a_session, found)
    ops = found.users[3]
    assert RULES.new_password(ops, "pw", "new") == "new"
    with refused(ErrorCode.PASSWORD):
        RULES.new_password(ops, "bad", "new")
    with refused(ErrorCode.BAD_REQUEST):
        RULES.new_password(ops, "pw", "")


def test_setting_a_users_key_needs_users_write_and_the_documented_format() -> None:
    found = accounts()
    ops = found.users[3]
    assert RULES.authorised("set-user-apikey", APIKEY, found) is found.users[2]
    with refused(ErrorCode.NO_RIGHTS):
        RULES.authorised("set-user-apikey", "s1", found)  # ops' role "2" is unknown here: no rights at all
    assert RULES.apikey_change(3, FREE_KEY, found) == (ops, FREE_KEY)
    assert RULES.apikey_change(3, OWN_KEY, found) == (ops, OWN_KEY)  # its own key again
    assert RULES.apikey_change(2, APIKEY, found) == (found.users[2], APIKEY)  # the configured key is the admin's
    with refused(ErrorCode.NOT_FOUND):
        RULES.apikey_change(9, FREE_KEY, found)
    with refused(ErrorCode.APIKEY_FORMAT):
        RULES.apikey_change(3, "abc", found)
    with refused(ErrorCode.APIKEY_TAKEN):
        RULES.apikey_change(3, APIKEY, found)  # the administrator's configured key
    with refused(ErrorCode.APIKEY_TAKEN):
        RULES.apikey_change(2, OWN_KEY, found)  # ops' own key


@pytest.mark.parametrize(
    ("roles", "api_key", "code"),
    [
        (["1"], FREE_KEY, None),
        (["1", "1"], None, None),
        (["01"], None, ErrorCode.BAD_REQUEST),  # not how an id is written (else it would be role 1 by another name)
        (["\u00b2"], None, ErrorCode.BAD_REQUEST),  # a superscript two is a Unicode digit, not an id
        (["\u0661"], None, ErrorCode.BAD_REQUEST),  # an Arabic-Indic one, likewise
        (["1" * 10], None, ErrorCode.BAD_REQUEST),  # ten digits: past the bound
        (["9" * 9], None, ErrorCode.UNKNOWN_ROLE),
        ([1], None, ErrorCode.BAD_REQUEST),
        (["1"], APIKEY, ErrorCode.APIKEY_TAKEN),  # the configured key
        (["1"], OWN_KEY, ErrorCode.APIKEY_TAKEN),  # another user's own key
    ],
)
def test_a_new_users_roles_are_ids_and_its_key_is_nobody_elses(
    roles: list[object], api_key: str | None, code: ErrorCode | None
) -> None:
    doc = {"name": "new", "password": "pw", "roles": roles, **({"apikey": api_key} if api_key else {})}
    if code is None:
        assert RULES.new_user(doc, accounts())[2] == roles
    else:
        with refused(code):
            RULES.new_user(doc, accounts())


@pytest.mark.parametrize(
    ("rights", "action", "allowed"),
    [
        ({"license": ["read"]}, "licence-read", True),
        ({"license": ["read"]}, "licence-write", False),
        ({"license": ["write"]}, "licence-read", False),
        ({"license": ["read", "write"]}, "licence-write", True),
        ({"scan": ["write"]}, "licence-read", False),
        ({}, "user", True),
        ({}, "change-password", True),
        ({}, "engine-change", False),
        ({"engines": ["write"]}, "engine-change", True),
        ({}, "create-role", False),
        ({"users": ["write"]}, "create-user", True),
    ],
)
def test_a_request_needs_the_right_of_its_area(rights: dict[str, list[str]], action: str, allowed: bool) -> None:
    found = accounts()
    role = found.add_role("custom", "", rights)
    found.users[3].roles = [str(role.id)]
    if allowed:
        assert RULES.authorised(action, OWN_KEY, found) is found.users[3]
    else:
        with refused(ErrorCode.NO_RIGHTS):
            RULES.authorised(action, OWN_KEY, found)


def test_an_optional_key_is_still_checked_for_its_right() -> None:
    found = accounts()
    assert RULES.authorised("scan", None, found) is None
    with refused(ErrorCode.NO_RIGHTS):
        RULES.authorised("scan", OWN_KEY, found)
    with refused(ErrorCode.ACCESS_MISSING):
        RULES.authorised("licence-read", None, found)


@pytest.mark.parametrize(
    ("doc", "ok"),
    [
        ({"name": "r", "rights": {"license": ["read"]}}, True),
        ({"name": "r", "rights": {}}, True),
        ({"name": "admin", "rights": {}}, None),  # the built-in role's name
        ({"name": "", "rights": {}}, False),
        ({"name": "r", "rights": {"licence": ["read"]}}, False),  # not an area
        ({"name": "r", "rights": {"license": ["own"]}}, False),
        ({"name": "r", "rights": {"license": "read"}}, False),
    ],
)
def test_a_new_role(doc: dict[str, object], ok: bool | None) -> None:
    if ok:
        assert RULES.new_role(doc, accounts())[0] == "r"
    else:
        with refused(ErrorCode.BAD_REQUEST if ok is False else ErrorCode.NAME_TAKEN):
            RULES.new_role(doc, accounts())


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"name": "new", "password": "pw", "roles": ["1"]}, None),
        ({"name": "new", "password": "pw", "roles": ["1"], "apikey": FREE_KEY}, None),
        ({"name": "ops", "password": "pw", "roles": ["1"]}, ErrorCode.NAME_TAKEN),
        ({"name": "new", "password": "", "roles": ["1"]}, ErrorCode.BAD_REQUEST),
        ({"name": "new", "password": "pw", "roles": []}, ErrorCode.BAD_REQUEST),
        ({"name": "new", "password": "pw", "roles": ["7"]}, ErrorCode.UNKNOWN_ROLE),
        ({"name": "new", "password": "pw", "roles": [1]}, ErrorCode.BAD_REQUEST),
        ({"name": "new", "password": "pw", "roles": ["1"], "apikey": "abc"}, ErrorCode.APIKEY_FORMAT),
    ],
)
def test_a_new_user(doc: dict[str, object], code: ErrorCode | None) -> None:
    if code is None:
        assert RULES.new_user(doc, accounts())[0] == "new"
    else:
        with refused(code):
            RULES.new_user(doc, accounts())


@pytest.mark.parametrize(
    ("key", "production", "body", "online"),
    [(K1, PROD, b"", True), (None, None, b"file", False), (K1, None, b"", None), (K1, PROD, b"file", None)],
)
def test_a_backup_registration_is_online_or_offline(
    key: str | None, production: str | None, body: bytes, online: bool | None
) -> None:
    if online is None:
        with refused(ErrorCode.BACKUP_REQUEST):
            RULES.backup_registration(key, production, body)
    else:
        assert RULES.backup_registration(key, production, body) is online


def test_the_activation_quantity() -> None:
    assert RULES.activation_quantity(1000) == 1000
    with refused(ErrorCode.BAD_REQUEST):
        RULES.activation_quantity(1001)
