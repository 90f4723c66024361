"""The pytest plugin (entry point `pytest11`, name `mockcore`): a running fleet for the tests that ask for one.

Fixtures (see the README, "pytest plugin and in-process server"):

- `mockcore_fleet` (session): a running `mockcore.MockFleet`, started the first time a test needs it;
- `mockcore` (function): that fleet, reset, then set up as the test's `mockcore_scenario` marker says;
- `mockcore_urls`, `mockcore_activation_url`, `mockcore_apikey`, `mockcore_key`, `mockcore_keys`;
- `mockcore_sessions` (instance -> authenticated requests session) and `mockcore_session` (a factory);
- `mockcore_fleet_options` (session): the MockFleet arguments from the options below; override it in a
  conftest.py to build the fleet in code.

Options (command line, else ini, else the default): `--mockcore-instances` / `mockcore_instances` (`prod,backup`),
`--mockcore-key` / `mockcore_keys` (repeatable, `KEY[:SLOTS[:DAYS]]`; default one seed key with 2 slots),
`--mockcore-seed` / `mockcore_seed`, `--mockcore-apikey` / `mockcore_apikey`, `--mockcore-admin` /
`mockcore_admin`, `--mockcore-control-token` / `mockcore_control_token`, `--mockcore-overrides` /
`mockcore_overrides`, `--mockcore-tenant-server` / `mockcore_tenant_server` with `--mockcore-tenant-server-token` /
`mockcore_tenant_server_token` (the fleet is a tenant of that running `mockcore serve --tenants`, created when the
session first needs it and deleted at its end: docs/guides/team-service.md).

Nothing heavy is imported and nothing starts unless a test uses a fixture. Under pytest-xdist every worker is its
own process with its own session fixture, hence its own fleet on its own free ports: workers share nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mockcore.inprocess import BaseUrlSession, MockFleet

MARKER = "mockcore_scenario"
_OPTIONS = pytest.StashKey[dict[str, Any]]()

# (command-line flag, ini name, MockFleet argument, help)
_SETTINGS: tuple[tuple[str, str, str, str], ...] = (
    ("--mockcore-instances", "mockcore_instances", "instances", "instance names, comma-separated (prod,backup)"),
    ("--mockcore-seed", "mockcore_seed", "seed", "seed of deployment ids, keys and the API key (0)"),
    ("--mockcore-apikey", "mockcore_apikey", "apikey", "the configured API key (derived from the seed)"),
    ("--mockcore-admin", "mockcore_admin", "admin", "the admin account USER:PASSWORD (admin:admin)"),
    ("--mockcore-control-token", "mockcore_control_token", "control_token", "token the /_mock/ control plane demands"),
    ("--mockcore-overrides", "mockcore_overrides", "overrides", "fidelity overrides file (YAML)"),
    ("--mockcore-profile", "mockcore_profile", "profile", "the line of Core emulated: 5.6 (default) or 4.18"),
    (
        "--mockcore-tenant-server",
        "mockcore_tenant_server",
        "tenant_server",
        "URL of a running `mockcore serve --tenants`: the session's fleet is a tenant there, not served here",
    ),
    (
        "--mockcore-tenant-server-token",
        "mockcore_tenant_server_token",
        "tenant_server_token",
        "the tenant server's --control-token",
    ),
)
_KEY_HELP = "activation key KEY[:SLOTS[:DAYS]], repeatable; an empty KEY is the seed's (default: one seed key, 2 slots)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockcore", "mockcore: an emulated MetaDefender Core fleet")
    for flag, ini, _argument, text in _SETTINGS:
        group.addoption(flag, dest=ini, default=None, metavar=ini.removeprefix("mockcore_").upper(), help=text)
        parser.addini(ini, text)
    group.addoption(
        "--mockcore-key", dest="mockcore_keys", action="append", default=None, metavar="KEY", help=_KEY_HELP
    )
    parser.addini("mockcore_keys", _KEY_HELP, type="linelist")


def _fleet_options(config: pytest.Config) -> dict[str, Any]:
    """MockFleet arguments from the command line, else the ini file; only those set (MockFleet has defaults)."""
    options: dict[str, Any] = {}
    for _flag, ini, argument, _text in _SETTINGS:
        value = config.getoption(ini)
        if not value and config.getini(ini):
            value = str(config.getini(ini)).strip()
            if argument == "overrides" and config.inipath is not None:
                value = str(config.inipath.parent / value)  # an ini path is relative to the ini file
        if value:
            options[argument] = str(value).strip()
    keys = config.getoption("mockcore_keys") or config.getini("mockcore_keys")
    if keys:
        options["keys"] = [str(k).strip() for k in keys]
    return options


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name): reset the mockcore fleet to the named scenario before the test "
        "(fresh, production-only, production-with-online-backup, production-with-offline-backup, expiring-soon, "
        "expired)",
    )
    options = _fleet_options(config)
    if options:  # check the settings now, once, rather than fail every test that uses the fleet
        from mockcore.inprocess import MockFleet

        try:
            MockFleet(**options)
        except ValueError as exc:
            raise pytest.UsageError(f"mockcore: {exc}") from exc
    config.stash[_OPTIONS] = options


@pytest.fixture(scope="session")
def mockcore_fleet_options(pytestconfig: pytest.Config) -> dict[str, Any]:
    """Keyword arguments of the session's MockFleet (from the options); override this fixture to change them."""
    options: dict[str, Any] = pytestconfig.stash[_OPTIONS]
    return dict(options)


@pytest.fixture(scope="session")
def mockcore_fleet(mockcore_fleet_options: dict[str, Any]) -> Iterator[MockFleet]:
    """The session's fleet, running on free ports. Not reset between tests: ask for `mockcore` for that."""
    from mockcore.inprocess import MockFleet

    with MockFleet(**mockcore_fleet_options) as fleet:
        yield fleet


def _scenario_name(marker: pytest.Mark) -> str:
    names = [*marker.args, *marker.kwargs.values()]
    if len(names) != 1 or not isinstance(names[0], str) or set(marker.kwargs) - {"name"}:
        pytest.fail(
            f'@pytest.mark.{MARKER} takes one scenario name, as in @pytest.mark.{MARKER}("production-only")',
            pytrace=False,
        )
    return str(names[0])


@pytest.fixture
def mockcore(mockcore_fleet: MockFleet, request: pytest.FixtureRequest) -> MockFleet:
    """The session's fleet, reset to its start state, then to the test's `mockcore_scenario` marker if any
    (the closest one: function, then class, then module)."""
    from mockcore.inprocess import ScenarioError

    mockcore_fleet.reset()
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        name = _scenario_name(marker)
        try:
            mockcore_fleet.scenario(name)
            problem = None
        except ScenarioError as exc:
            problem = str(exc)
        if problem is not None:  # outside the except block: the message alone, no chained traceback
            pytest.fail(f"{MARKER}: {problem}", pytrace=False)
    return mockcore_fleet


@pytest.fixture
def mockcore_urls(mockcore: MockFleet) -> dict[str, str]:
    """Instance name -> base URL."""
    return mockcore.urls


@pytest.fixture
def mockcore_activation_url(mockcore: MockFleet) -> str:
    """The activation server's base URL."""
    return mockcore.activation_url


@pytest.fixture
def mockcore_apikey(mockcore: MockFleet) -> str:
    """The API key every instance accepts in the `apikey` header."""
    return mockcore.apikey


@pytest.fixture
def mockcore_keys(mockcore: MockFleet) -> list[str]:
    """The fleet's activation keys."""
    return mockcore.keys


@pytest.fixture
def mockcore_key(mockcore: MockFleet) -> str:
    """The first activation key (the one the scenarios use)."""
    return mockcore.key


@pytest.fixture
def mockcore_session(mockcore: MockFleet) -> Iterator[Callable[..., BaseUrlSession]]:
    """A factory: `mockcore_session("prod")` is a requests session for that instance (or `activation_server`)
    with the base URL and the apikey header set; `apikey=None` or another key changes the header. Every session is
    closed after the test."""
    made: list[BaseUrlSession] = []

    def make(name: str, **kwargs: Any) -> BaseUrlSession:
        session = mockcore.session(name, **kwargs)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


@pytest.fixture
def mockcore_sessions(
    mockcore: MockFleet, mockcore_session: Callable[..., BaseUrlSession]
) -> dict[str, BaseUrlSession]:
    """Instance name -> an authenticated requests session (base URL and apikey header set)."""
    return {name: mockcore_session(name) for name in mockcore.instances}
