"""The memory held by idle tenants (`mockcore serve --tenants`), against the same process with no tenant.

    python3 bench/tenants.py                 # 1,000 idle tenants of two instances each (~10 s)
    python3 bench/tenants.py --tenants 200 --instances 3 --json

One process, one tenant server on a free loopback port (mockcore.tenant_server.TenantServer). First the baseline:
the server running, no tenant, one request served. Then N tenants are created through the tenant API
(POST /_mock/tenants over HTTP, as CI jobs do) and left idle. Measured both ways: Python's own allocations
(tracemalloc, started after the imports: the heap the tenants hold) and the process's resident set (RSS from
/proc/self/statm, what the machine pays). Then, for comparison, a sample of the tenants is used once on every
face, which builds their Flask apps (built lazily: an idle tenant has none): the per-tenant figure of a used
tenant shows what laziness saves. Printed: each figure and the ratios to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tracemalloc

import requests

from mockcore.tenant_server import TenantServer
from mockcore.tenants import MemoryTenantRegistry, TenantLimits

MIB = 1024 * 1024


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=2, help="Core instances per tenant")
    parser.add_argument("--used", type=int, default=20, help="tenants then used once on every face")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tracemalloc.start()
    limits = TenantLimits(max_tenants=args.tenants, max_instances=max(args.instances, 1))
    body = {"instances": [f"core{i}" for i in range(args.instances)]}
    with TenantServer(MemoryTenantRegistry(limits)) as server, requests.Session() as http:
        assert http.get(server.url + "/_mock/health", timeout=30).ok
        base_heap, base_rss = heap(), rss()
        tenants = []
        for _ in range(args.tenants):
            response = http.post(server.url + "/_mock/tenants", json=body, timeout=30)
            response.raise_for_status()
            tenants.append(response.json())
        idle_heap, idle_rss = heap(), rss()
        for tenant in tenants[: args.used]:
            for url in [*tenant["instances"].values(), tenant["activation_server"]]:
                http.get(url + "/version", headers={"apikey": tenant["apikey"]}, timeout=30)
        used_heap, used_rss = heap(), rss()
        cached = server.app.cached_faces()

    n, used = args.tenants, max(args.used, 1)
    result = {
        "tenants": n,
        "instances_per_tenant": args.instances,
        "baseline": {"heap_mib": base_heap / MIB, "rss_mib": base_rss / MIB},
        "idle": {
            "heap_mib": (idle_heap - base_heap) / MIB,
            "rss_mib": (idle_rss - base_rss) / MIB,
            "heap_kib_per_tenant": (idle_heap - base_heap) / n / 1024,
            "rss_kib_per_tenant": (idle_rss - base_rss) / n / 1024,
        },
        "used": {
            "tenants": args.used,
            "faces_built": cached,
            "heap_kib_per_tenant": (used_heap - idle_heap) / used / 1024,
            "rss_kib_per_tenant": (used_rss - idle_rss) / used / 1024,
        },
        "ratios": {
            "process_rss_with_tenants_to_without": idle_rss / base_rss,
            "used_tenant_to_idle_tenant_heap": (used_heap - idle_heap) / used / max((idle_heap - base_heap) / n, 1),
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    idle, usedr, ratios = result["idle"], result["used"], result["ratios"]
    print(f"baseline (tenant server, no tenant): heap {base_heap / MIB:.1f} MiB, RSS {base_rss / MIB:.1f} MiB")
    print(
        f"{n} idle tenants of {args.instances} instances: heap +{idle['heap_mib']:.1f} MiB "
        f"({idle['heap_kib_per_tenant']:.1f} KiB each), RSS +{idle['rss_mib']:.1f} MiB "
        f"({idle['rss_kib_per_tenant']:.1f} KiB each)"
    )
    print(
        f"{args.used} of them used once on every face ({cached} faces built): heap "
        f"+{usedr['heap_kib_per_tenant']:.0f} KiB, RSS +{usedr['rss_kib_per_tenant']:.0f} KiB per used tenant"
    )
    print(
        f"ratios: process RSS with {n} idle tenants / without = {ratios['process_rss_with_tenants_to_without']:.2f}; "
        f"a used tenant / an idle one (heap) = {ratios['used_tenant_to_idle_tenant_heap']:.0f}"
    )


if __name__ == "__main__":
    main()
