"""The judge of one mutant for `bench/mutation.py`: the contract server suite, alone, at its default budget,
in-process, against a fresh fleet built from the (possibly mutated) mockcore found under --root.

    python3 bench/mutation_judge.py --root .          # the unmutated tree: must print VERDICT passed, exit 0

cosmic-ray runs it once per mutant as its test command, in a private copy of the tree where it has mutated one
file in place. Exit status: 0 the suite passed (the mutant SURVIVED); 1 the suite failed or the run crashed,
imports included (the mutant is KILLED); 3 a harness error (mockcore, contracts or tests would not be imported from
--root), which `mutation.py` counts as an error, never as a kill. Everything it says goes to stdout (cosmic-ray
keeps stdout, drops stderr); the first line starting with `VERDICT` is what `mutation.py` reads.

Reproducible: the suite runs derandomized (`SuiteSettings(derandomize=True)`: Hypothesis seeds its generator from
a hash of the test function, so every run draws the same sequences, no example database), and `mutation.py` runs
it with PYTHONHASHSEED=0. Only `SuiteSettings` and `run_server_suite` of the suite are used (its stable entry
point), with the same fleet the project's tests use (`tests.faulty_servers.build_fleet`, `inprocess_target`).
Shrinking is off unless --shrink: it changes how long a failing run takes (minutes, for some mutants), never
whether it fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from pathlib import Path

HARNESS_ERROR = 3
REPORT_LINES = 25  # of a failing report, kept in the mutant's result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="the tree whose mockcore, contracts and tests to import")
    parser.add_argument("--shrink", action="store_true", help="keep Hypothesis' shrink phase (slower kills)")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    sys.path.insert(0, str(root))
    # Where the packages come from, found without running them: anywhere but --root is the harness's fault.
    for name in ("mockcore", "contracts", "tests"):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None or not Path(origin).resolve().is_relative_to(root):
            print(f"VERDICT harness-error: {name} would be imported from {origin}, not from {root}")
            return HARNESS_ERROR
    started = time.monotonic()
    try:
        # Importing runs the mutated module-level code (a decorator removed, a table changed), so a failure here
        # is the mutant's: the unmutated tree imported and passed in this same copy before any mutant ran.
        from hypothesis import Phase

        import tests.faulty_servers
        from contracts.server_suite import SuiteSettings, run_server_suite
        from contracts.target import discover
    except BaseException:
        print(f"VERDICT crashed on import ({time.monotonic() - started:.1f} s)\n{traceback.format_exc()}")
        return 1

    defaults = SuiteSettings()
    phases = defaults.phases if args.shrink else tuple(p for p in defaults.phases if p is not Phase.shrink)
    suite = SuiteSettings(examples=defaults.examples, steps=defaults.steps, derandomize=True, phases=phases)
    try:
        fleet = discover(tests.faulty_servers.inprocess_target(tests.faulty_servers.build_fleet()))
        run = run_server_suite(fleet, suite)
    except BaseException:  # a mutant that crashes the fleet or the suite is a detected mutant
        print(f"VERDICT crashed ({time.monotonic() - started:.1f} s)\n{traceback.format_exc()}")
        return 1
    seconds = time.monotonic() - started
    examples = sum(r.examples for r in run.reports)
    steps = sum(r.total_steps for r in run.reports)
    stats = f"{examples} examples, {steps} steps, {seconds:.1f} s"
    if run.passed:
        print(f"VERDICT passed ({stats})")
        return 0
    failed = next((r for r in run.reports if not r.passed), None)
    rule = failed.rule if failed is not None else "parity"
    print(f"VERDICT failed rule={rule} ({stats})")
    if failed is not None:
        print("\n".join(failed.render().splitlines()[:REPORT_LINES]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
