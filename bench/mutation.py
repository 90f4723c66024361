"""Mutation score of the contract server suite: a seeded random sample of cosmic-ray's mutants of mockcore's rule
code, each judged by the contract server suite alone (`bench/mutation_judge.py`), in-process, at its default budget.

    python3 -m pip install -e '.[mutation]'                           # cosmic-ray
    python3 bench/mutation.py --sample 300 --seed 1 --jobs 2          # ~15-25 min on two cores
    python3 bench/mutation.py --sample 20 --seed 1                    # a quick look (~2 min)
    python3 bench/mutation.py --sample 300 --seed 1 --list            # the sampled mutants' ids, nothing run

Not a test: pytest never collects bench/. Everything happens in a private copy of the tree under a temporary
directory (cosmic-ray mutates files in place, so it never touches the repository); the report goes to --out
(default build/mutation/, git-ignored). Exit status 0 after a complete run whatever the score, 1 when a mutant
could not be judged (a harness error), 2 when the run could not start (cosmic-ray missing, the unmutated suite
failing).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "bench" / "equivalent_mutants.txt"

# What is mutated: the licence rules (state machine, fleet, activation server, accounts and apikeys, scans, the
# error catalogue) and the code that renders their answers on the wire: the shared error rendering and body
# reading, and the two faces' views (the Core face's licence, backup, readiness and scan answers; the activation
# server's YAML answers). Whole files: what the suite does not look at (logins, engines, persistence) shows up
# among the survivors, by function.
SCOPE = (
    "mockcore/lifecycle.py",
    "mockcore/fleet.py",
    "mockcore/activation.py",
    "mockcore/accounts.py",
    "mockcore/scanning.py",
    "mockcore/catalogue.py",
    "mockcore/http/rendering.py",
    "mockcore/http/core_api.py",
    "mockcore/http/activation_api.py",
)
# What each private copy holds: the packages, and the fleet the project's tests build (the judge imports it).
COPIED = ("mockcore", "contracts", "tests/__init__.py", "tests/faulty_servers.py")
JUDGE = "mutation_judge.py"
POLL_SECONDS = 30


@dataclass
class Mutant:
    job_id: str
    path: str
    line: int
    col: int
    operator: str
    occurrence: int
    definition: str | None
    mutated: str = ""  # the first changed line of the mutated source, stripped ("<deleted> ..." for a removal)
    outcome: str = ""  # killed | survived | timeout | error
    detail: str = ""  # the judge's VERDICT line (the rule that broke), or what went wrong
    diff: str = ""
    equivalent: str | None = None  # the reason, when bench/equivalent_mutants.txt lists it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        """Stable for the same source and cosmic-ray version: where, which operator, and what the line becomes."""
        return f"{self.path}:{self.line}:{self.col} {self.operator} | {self.mutated}"


def cosmic_ray_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from cosmic_ray.cli import main; sys.exit(main())", *args]


def make_copy(destination: Path) -> Path:
    destination.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    shutil.copy2(ROOT / "bench" / JUDGE, destination / JUDGE)
    return destination


def judge_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    return env


def write_config(path: Path, test_command: str, timeout: float) -> None:
    lines = [
        "[cosmic-ray]",
        f"module-path = {json.dumps(list(SCOPE))}",
        f"timeout = {timeout:.1f}",
        "excluded-modules = []",
        f"test-command = {json.dumps(test_command)}",
        "",
        "[cosmic-ray.distributor]",
        'name = "local"',
        "",
    ]
    path.write_text("\n".join(lines))


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(line, character column) spans of every annotation: with `from __future__ import annotations` they are
    strings never evaluated, so a mutant inside one (cosmic-ray turns `str | None` into `str + None`, ...) is
    equivalent by construction."""
    tree = ast.parse(source)
    if not any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(a.name == "annotations" for a in node.names)
        for node in tree.body
    ):
        return []
    lines = source.splitlines()

    def column(line: int, byte_offset: int) -> int:
        return len(lines[line - 1].encode()[:byte_offset].decode(errors="ignore"))

    nodes: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            nodes.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            nodes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            nodes.append(node.annotation)
    return [
        (
            (n.lineno, column(n.lineno, n.col_offset)),
            (n.end_lineno or n.lineno, column(n.end_lineno or n.lineno, n.end_col_offset or 0)),
        )
        for n in nodes
    ]


def mutate(source: str, mutant: Mutant) -> str | None:
    """The mutant's source, by cosmic-ray's own mutation of the file (None: no mutation at that occurrence)."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    operator = cosmic_ray.plugins.get_operator(mutant.operator)(**mutant.extra["operator_args"])
    return mutate_code(source, operator, mutant.occurrence)


def compiles(code: str, path: str) -> bool:
    try:
        with warnings.catch_warnings():  # `x is "ok"` and the like: a mutant, not our code
            warnings.simplefilter("ignore")
            compile(code, path, "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


def changed_line(source: str, mutated: str) -> str:
    """The first line the mutation changed, stripped: the new line, or `<deleted> old line` for a removal."""
    before, after = source.splitlines(), mutated.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        new = [line.strip() for line in after[j1:j2] if line.strip()]
        if new:
            return new[0]
        old = [line.strip() for line in before[i1:i2] if line.strip()]
        if old:
            return "<deleted> " + old[0]
    return "<unchanged>"


def load_equivalents(path: Path) -> dict[str, str]:
    """`ID || reason` per line; `#` comments and blank lines ignored."""
    listed: dict[str, str] = {}
    if not path.exists():
        return listed
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        ident, sep, reason = line.rpartition(" || ")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}:{number}: expected `ID || reason`, got: {raw}")
        listed[ident.strip()] = reason.strip()
    return listed


def loose_key(ident: str) -> tuple[str, str, str]:
    """An id without its line and column: a listed mutant still matches after lines above it moved."""
    where, _, rest = ident.partition(" ")
    operator, _, mutated = rest.partition(" | ")
    return where.split(":", 1)[0], operator, mutated


def mark_equivalents(sample: list[Mutant], listed: dict[str, str]) -> list[str]:
    notes = []
    by_ident = {m.ident: m for m in sample}
    loose: dict[tuple[str, str, str], list[Mutant]] = defaultdict(list)
    for m in sample:
        loose[loose_key(m.ident)].append(m)
    for ident, reason in listed.items():
        if ident in by_ident:
            by_ident[ident].equivalent = reason
        elif len(candidates := loose[loose_key(ident)]) == 1 and candidates[0].equivalent is None:
            candidates[0].equivalent = reason
            notes.append(f"listed equivalent matched at a new place: {ident} -> {candidates[0].ident}")
    return notes


def read_session(session: Path) -> list[Mutant]:
    from cosmic_ray.work_db import WorkDB, use_db

    with use_db(str(session), WorkDB.Mode.open) as db:
        items = list(db.work_items)
    mutants = []
    for item in items:
        (spec,) = item.mutations
        mutants.append(
            Mutant(
                job_id=item.job_id,
                path=Path(spec.module_path).as_posix(),
                line=spec.start_pos[0],
                col=spec.start_pos[1],
                operator=spec.operator_name,
                occurrence=spec.occurrence,
                definition=spec.definition_name,
                extra={"operator_args": dict(spec.operator_args or {}), "end": list(spec.end_pos)},
            )
        )
    mutants.sort(key=lambda m: (m.path, m.line, m.col, m.operator, m.occurrence))
    return mutants


def keep_only(session: Path, job_ids: set[str]) -> None:
    """Mark every other work item skipped, as cosmic-ray's own filters do; `exec` then runs only these."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        others = [item.job_id for item in db.work_items if item.job_id not in job_ids]
        db.set_multiple_results(others, WorkResult(output="not in the sample", worker_outcome=WorkerOutcome.SKIPPED))


def judged(session: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{session}?mode=ro", uri=True, timeout=10)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM work_results WHERE UPPER(worker_outcome) != 'SKIPPED'").fetchone()
    return int(count)


def collect(session: Path, by_job: dict[str, Mutant]) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    with use_db(str(session), WorkDB.Mode.open) as db:
        done = db.completed_work_items
    for item, result in done:
        mutant = by_job.get(item.job_id)
        if mutant is None or result.worker_outcome == WorkerOutcome.SKIPPED:
            continue
        output = result.output or ""
        verdict = next((line for line in output.splitlines() if line.startswith("VERDICT")), "")
        mutant.diff = result.diff or ""
        if result.worker_outcome != WorkerOutcome.NORMAL:
            mutant.outcome, mutant.detail = "error", f"{result.worker_outcome.value}: {output[-2000:]}"
        elif output == "timeout":
            mutant.outcome, mutant.detail = "timeout", "past the per-mutant timeout"
        elif result.test_outcome == TestOutcome.SURVIVED:
            mutant.outcome, mutant.detail = "survived", verdict
        elif verdict.startswith("VERDICT harness-error") or result.test_outcome == TestOutcome.INCOMPETENT:
            mutant.outcome, mutant.detail = "error", output[-2000:]
        elif verdict.startswith(("VERDICT failed", "VERDICT crashed")):
            mutant.outcome, mutant.detail = "killed", verdict
        else:  # died before the judge could say anything: an interpreter killed by the mutant, say
            mutant.outcome, mutant.detail = "killed", "crashed: " + output[-500:]


def baseline(copy: Path, shrink: bool) -> tuple[bool, float, str]:
    command = [sys.executable, JUDGE, "--root", "."] + (["--shrink"] if shrink else [])
    started = time.monotonic()
    done = subprocess.run(command, cwd=copy, env=judge_env(), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    verdict = next((line for line in done.stdout.splitlines() if line.startswith("VERDICT")), done.stdout[-500:])
    return done.returncode == 0, seconds, verdict + ("" if done.returncode == 0 else "\n" + done.stdout + done.stderr)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, to the process group it leads (the judge it may be running included)."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_sessions(sessions: list[Path], config: Path, total: int) -> float:
    started = time.monotonic()
    processes = []
    logs = []
    try:
        for session in sessions:
            log = (session.parent / "exec.log").open("wb")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    cosmic_ray_command("exec", str(config), session.name),
                    cwd=session.parent,
                    env=judge_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        next_report = started + POLL_SECONDS
        while any(p.poll() is None for p in processes):
            time.sleep(1)
            if time.monotonic() >= next_report:
                next_report += POLL_SECONDS
                with contextlib.suppress(sqlite3.Error):
                    done = sum(judged(s) for s in sessions)
                    print(f"  [{time.monotonic() - started:6.0f} s] {done}/{total} judged", flush=True)
        failed = [p for p in processes if p.returncode != 0]
        if failed:
            tails = "\n".join((s.parent / "exec.log").read_text(errors="replace")[-2000:] for s in sessions)
            raise SystemExit(f"cosmic-ray exec failed:\n{tails}")
    finally:
        for process in processes:
            stop(process)
        for log in logs:
            log.close()
    return time.monotonic() - started


def per_file_lines(sample: list[Mutant]) -> list[str]:
    """The figures per file."""
    lines = []
    per_file: dict[str, Counter[str]] = defaultdict(Counter)
    for m in sample:
        per_file[m.path]["equivalent" if m.equivalent else m.outcome] += 1
    lines.append(f"{'file':34} {'sampled':>7} {'killed':>6} {'survived':>8} {'timeout':>7} {'equiv':>5} {'score':>6}")
    for path in SCOPE:
        c = per_file.get(path, Counter())
        n = sum(c.values())
        denominator = n - c["equivalent"]
        score = f"{100 * c['killed'] / denominator:5.1f}%" if denominator else "   n/a"
        lines.append(
            f"{path:34} {n:7} {c['killed']:6} {c['survived']:8} {c['timeout']:7} {c['equivalent']:5} {score:>6}"
        )
    return lines


def survivors_text(survivors: list[Mutant]) -> str:
    out = []
    by_file: dict[str, list[Mutant]] = defaultdict(list)
    for m in survivors:
        by_file[m.path].append(m)
    for path in sorted(by_file):
        out.append(f"== {path} ({len(by_file[path])} survived)")
        for m in by_file[path]:
            out.append(f"{m.ident}")
            out.append(f"    in {m.definition or '<module>'}")
            body = [line for line in m.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
            out.extend(f"    {line}" for line in body)
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=300, help="how many mutants to draw (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="the seed of the draw (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants judged at once (default 2)")
    parser.add_argument("--timeout", type=float, help="per mutant, seconds (default: max(60, 10 x unmutated run))")
    parser.add_argument("--shrink", action="store_true", help="keep Hypothesis' shrinking in the judge (slower)")
    parser.add_argument("--list", action="store_true", help="print the sampled mutants' ids and stop")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "mutation", help="report directory")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temporary copies and sessions")
    args = parser.parse_args()

    try:
        import cosmic_ray  # noqa: F401
    except ImportError:
        print("cosmic-ray is missing: python3 -m pip install -e '.[mutation]'")
        return 2
    from importlib.metadata import version

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="mockcore-mutation-"))
    try:
        return run(args, workdir, started, version("cosmic-ray"))
    finally:
        if args.keep_workdir:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path, started: float, cr_version: str) -> int:
    first = make_copy(workdir / "worker-0")
    if not args.list:
        passed, seconds, verdict = baseline(first, args.shrink)
        print(f"unmutated: {verdict} in {seconds:.1f} s wall (judge process included)")
        if not passed:
            print("the unmutated suite must pass before mutants can be judged: stopping")
            return 2
        timeout = args.timeout or max(60.0, 10 * seconds)
    else:
        timeout = args.timeout or 60.0
    test_command = f"{sys.executable} {JUDGE} --root ." + (" --shrink" if args.shrink else "")
    config = workdir / "cosmic-ray.toml"
    write_config(config, test_command, timeout)
    session = first / "session.sqlite"
    init = subprocess.run(
        cosmic_ray_command("init", str(config), session.name), cwd=first, capture_output=True, text=True, check=False
    )
    if init.returncode != 0:
        print(f"cosmic-ray init failed:\n{init.stdout}{init.stderr}")
        return 2

    pool = read_session(session)
    sources = {path: (first / path).read_text() for path in SCOPE}
    spans = {path: annotation_spans(text) for path, text in sources.items()}
    eligible = [m for m in pool if not any(a <= (m.line, m.col) <= b for a, b in spans[m.path])]
    # A seeded permutation of the eligible mutants, sorted first so the draw depends on the seed and the source
    # only; the sample is its first --sample mutants that compile (cosmic-ray also turns the bare `*` of a
    # keyword-only parameter list into `//`, ...: not a program, so not a mutant). A smaller sample with the same
    # seed is a prefix of a larger one.
    order = random.Random(args.seed).sample(eligible, len(eligible))
    sample: list[Mutant] = []
    invalid = 0
    for m in order:
        if len(sample) == args.sample:
            break
        code = mutate(sources[m.path], m)
        if code is None or not compiles(code, m.path):
            invalid += 1
            continue
        m.mutated = changed_line(sources[m.path], code)
        sample.append(m)
    size = len(sample)
    sample.sort(key=lambda m: (m.path, m.line, m.col, m.operator, m.occurrence))
    listed = load_equivalents(EQUIVALENTS)
    notes = mark_equivalents(sample, listed)
    equivalent = sum(1 for m in sample if m.equivalent)
    print(
        f"mutants: cosmic-ray {cr_version} made {len(pool)} in {len(SCOPE)} files; {len(pool) - len(eligible)} "
        f"inside type annotations dropped (never evaluated); {len(eligible)} eligible; {invalid} drawn but not "
        "valid Python, skipped"
    )
    print(
        f"sample: {size} drawn with seed {args.seed}; {equivalent} of them listed in "
        f"{EQUIVALENTS.relative_to(ROOT)} ({len(listed)} entries) and excluded from the score"
    )
    for note in notes:
        print(f"note: {note}")
    if args.list:
        for m in sample:
            print(m.ident + (f" || {m.equivalent}" if m.equivalent else ""))
        return 0

    jobs = max(1, min(args.jobs, size))
    sessions = [session]
    for index in range(1, jobs):
        copy = make_copy(workdir / f"worker-{index}")
        shutil.copy2(session, copy / session.name)
        sessions.append(copy / session.name)
    for index, path in enumerate(sessions):
        keep_only(path, {m.job_id for m in sample[index::jobs]})  # interleaved: each copy gets every file
    print(f"judging {size} mutants, {jobs} at a time, timeout {timeout:.0f} s each ...", flush=True)
    run_seconds = run_sessions(sessions, config, size)
    by_job = {m.job_id: m for m in sample}
    for path in sessions:
        collect(path, by_job)
    for m in sample:
        if not m.outcome:
            m.outcome, m.detail = "error", "no result recorded"

    counted = [m for m in sample if not m.equivalent]
    counts = Counter(m.outcome for m in counted)
    denominator = size - equivalent
    score = counts["killed"] / denominator if denominator else 0.0
    wall = time.monotonic() - started
    print()
    print(
        f"killed {counts['killed']}, survived {counts['survived']}, timed out {counts['timeout']}, "
        f"errors {counts['error']}; equivalent (excluded) {equivalent}"
    )
    print(f"score = killed / (sampled - equivalent) = {counts['killed']} / {denominator} = {100 * score:.1f}%")
    if counts["timeout"]:
        print(f"  (timeouts counted as detected: {100 * (counts['killed'] + counts['timeout']) / denominator:.1f}%)")
    print(f"wall time {wall:.0f} s (judging {run_seconds:.0f} s, {run_seconds * jobs / max(size, 1):.1f} s per mutant)")
    print()
    print("\n".join(per_file_lines(sample)))
    rules = Counter(m.detail.split("rule=", 1)[1].split()[0] for m in counted if "rule=" in m.detail)
    crashed = sum(1 for m in counted if m.outcome == "killed" and "crashed" in m.detail)
    print()
    print("kills by the rule the suite reported: " + ", ".join(f"{r} {n}" for r, n in rules.most_common()))
    print(f"kills by a crash of the fleet or the suite: {crashed}")
    for m in sample:
        if m.equivalent and m.outcome in ("killed", "timeout"):
            print(f"warning: listed as equivalent but {m.outcome}: {m.ident}")
    for m in counted:
        if m.outcome == "error":
            print(f"ERROR judging {m.ident}: {m.detail[:500]}")

    survivors = [m for m in counted if m.outcome == "survived"]
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "tool": f"cosmic-ray {cr_version}",
        "seed": args.seed,
        "sampled": size,
        "pool": len(pool),
        "eligible": len(eligible),
        "invalid_skipped": invalid,
        "equivalent": equivalent,
        "counts": dict(counts),
        "score": score,
        "timeout_s": timeout,
        "jobs": jobs,
        "wall_s": wall,
    }
    fields = ("path", "line", "col", "operator", "occurrence", "definition", "mutated", "diff")
    (args.out / "survivors.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "survivors": [{"id": m.ident, **{k: getattr(m, k) for k in fields}} for m in survivors],
            },
            indent=2,
        )
    )
    (args.out / "survivors.txt").write_text(survivors_text(survivors))
    (args.out / "results.json").write_text(
        json.dumps({"summary": summary, "mutants": [{"id": m.ident, **asdict(m)} for m in sample]}, indent=2)
    )
    print()
    print(f"survivors ({len(survivors)}), grouped by file, with ids and diffs: {args.out / 'survivors.txt'}")
    print(f"every sampled mutant and its verdict: {args.out / 'results.json'}")
    return 1 if counts["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
