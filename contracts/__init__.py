"""The contract of MetaDefender Core's licence and hot-backup API: our OpenAPI description, an independent model of
the licence rules, and property-based suites that check any server (the mock, a container, a real Core) and any
client against that model.

This package never imports `mockcore`: it speaks HTTP to base URLs, like any client, and uses the mock's
control plane (`/_mock/`) only when the target says it has one.
"""

__version__ = "0.1.0"
