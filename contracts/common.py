"""What the server suite (`contracts.server_suite`) and the client harness (`contracts.client.harness`) share: the
Hypothesis settings of a run against a live target, and a tampered licence file."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

# Every phase a run goes through by default (explicit examples, replayed ones, generated ones, targeted ones, then
# shrinking the first failure).
PHASES: tuple[Phase, ...] = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)


def stateful_settings(examples: int, steps: int, derandomize: bool, phases: tuple[Phase, ...]) -> settings:
    """The Hypothesis settings of a suite run against a live target: no deadline (the network sets the pace), no
    example database written where the user runs it, no health check (a slow target is not a broken one), and the
    first failure shrunk and raised."""
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=derandomize,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )


def edited(content: bytes) -> bytes:
    """A licence file someone tampered with: `licensed_to` (or, in a format we do not know, one byte) changed."""
    marker = b"licensed_to:"
    at = content.find(marker)
    if at >= 0:
        return content[: at + len(marker)] + b" 'someone else'" + content[content.index(b"\n", at) :]
    middle = len(content) // 2
    return content[:middle] + bytes([content[middle] ^ 0x01]) + content[middle + 1 :]
