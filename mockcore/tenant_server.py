"""The tenant server on a real port (`mockcore serve --tenants`, docs/guides/team-service.md): the tenant API and
every tenant's faces on one port (mockcore.http.tenant_api), served by mockcore.serving's server, with a sweeper
thread that removes tenants idle past their timeout.

    with TenantServer(MemoryTenantRegistry(TenantLimits(max_tenants=10)), port=0) as server:
        requests.post(server.url + "/_mock/tenants", json={"instances": ["prod", "backup"]})
"""

from __future__ import annotations

import threading

from mockcore.fleet import StoreError
from mockcore.http.tenant_api import TenantServerApp
from mockcore.serving import FaceServer, make_server
from mockcore.tenants import TenantRegistry
from mockcore.tls import TlsFiles

SWEEP_EVERY = 30.0  # seconds between sweeps of idle tenants, at most (less for a shorter idle timeout)


class TenantServer:
    def __init__(
        self,
        registry: TenantRegistry,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        control_token: str | None = None,
        threads: int = 16,
        tls: TlsFiles | None = None,
    ) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self.tls = tls
        self.threads = threads
        self.app = TenantServerApp(registry, control_token=control_token, base_url=lambda: self.url)
        self._server: FaceServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        """The server's base URL (a wildcard address is reached at 127.0.0.1)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls is not None else 'http'}://{host}:{self.port}"

    def start(self) -> TenantServer:
        if self._server is not None:
            raise RuntimeError("this TenantServer is already running")
        server = make_server(
            self.host, self.port, self.app, threads=self.threads, tls=self.tls, name="mockcore-tenants"
        )
        try:
            server.prepare()
        except OSError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port} for the tenants: {exc.strerror or exc}") from exc
        self._server, self.port = server, server.bind_addr[1]
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=server.serve, name="mockcore-tenants", daemon=True),
            threading.Thread(target=self._sweep, name="mockcore-tenant-sweeper", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _sweep(self) -> None:
        every = min(SWEEP_EVERY, max(self.registry.limits.idle_timeout / 4, 0.05))
        while not self._stopping.wait(every):
            try:
                gone = self.registry.expire_idle()
            except StoreError:  # a shared store out of reach: the next sweep tries again
                continue
            for tenant_id in gone:
                self.app.forget(tenant_id)

    def stop(self) -> None:
        """Stop serving; idempotent. The tenants stay in the registry."""
        server, self._server = self._server, None
        self._stopping.set()
        if server is not None:
            server.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> TenantServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
