"""`mockcore-contracts`: run the contract suites from a shell."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """Check a server, or a client, against the licence contract of MetaDefender Core."""
