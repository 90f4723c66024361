"""One command adapter for both protocol versions, in JSON lines: version 1 requests (`"operation"`) go to the
correct one-call client (`examples/clients/python_client`), version 2 requests (`"workflow"`) to the runbooks.

    mockcore-contracts client --command 'python3 examples/workflows/lines_adapter.py'
    mockcore-contracts workflows --command 'python3 examples/workflows/lines_adapter.py' --persistent

It loops over the lines of stdin, so it serves one request per process and the persistent mode unchanged.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent)]

from runbooks import Runbooks  # noqa: E402

from contracts.client import Instance, Success  # noqa: E402
from examples.clients.python_client.adapter import Adapter  # noqa: E402


def answer(one_call: Adapter, runbooks: Runbooks, request: dict[str, Any]) -> dict[str, Any]:
    protocol = request.get("protocol")
    if protocol == "mockcore-contracts-client/1":
        instance = Instance(**request["instance"])
        arguments = dict(request["arguments"])
        for name in [n for n in arguments if n.endswith("_base64")]:
            arguments[name.removesuffix("_base64")] = base64.b64decode(arguments.pop(name))
            arguments.pop(name.removesuffix("_base64") + "_path", None)
        outcome = getattr(one_call, request["operation"])(instance, **arguments)
    elif protocol == "mockcore-contracts-client/2":
        instances = {role: Instance(**doc) for role, doc in request["instances"].items()}
        outcome = getattr(runbooks, request["workflow"])(**instances, **request["arguments"])
    else:
        return {"ok": False, "status": None, "error": f"unknown protocol {protocol!r}"}
    if isinstance(outcome, Success):
        return {"ok": True, "result": dict(outcome.result)}
    return {"ok": False, "status": outcome.status, "error": outcome.error}


def main() -> None:
    one_call, runbooks = Adapter(), Runbooks()
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(answer(one_call, runbooks, json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
