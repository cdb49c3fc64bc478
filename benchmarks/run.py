"""Every benchmark of the harness in one table: what grading costs, and how fast references are.

1. Harness overhead: one small notebook (a parameters cell and one cell defining the contract)
   run by plain nbclient, ``jupyter nbconvert --execute``, papermill, nbval, ``nbgrader
   autograde`` and ``grader check`` (without and with the sandbox), interleaved, each in a fresh
   process, REPEAT times, all in the same ``python3`` kernel; median and spread, and the
   difference to nbclient. nbval and nbgrader come from ``.venv-peers/`` (made by
   ``benchmarks/setup-peers.sh``; reported as not measured without it). The grader's probe (its
   calls of ``predict`` in the kernel) is reported apart and excluded from its fixed cost; its
   run (the runner process, from its start to its exit: kernel start, cells, probe, shutdown) is
   reported too, so that what the grader spends outside the run shows. Each
   row also gives the CPU time (user + system) of the call and its processes (not under
   bubblewrap, whose processes' times do not come back), and two floor rows the CPU time of
   ``import sklearn.metrics`` beside ``python -c pass`` (one OpenBLAS thread, as the grader
   has): scoring needs scikit-learn, which the peers never import. The grader's modules are
   byte-compiled first, as pip compiles the peers'. Then the batch: COPIES such notebooks in one
   call of each tool (a cohort; papermill through its Python API, its command line taking one
   notebook), REPEAT // 2 times, per notebook.
2. Start-up: ``grader --help`` and ``grader challenges`` against ``python -c pass``.
3. Probe throughput: ``grader check`` of a notebook for ``cifar10-tf-cnn`` (10,000 hidden test
   images) whose ``predict`` is a constant and then a NumPy linear model: images per second
   through ``predict``, and the share of the probe's time that is the grader's own transfer
   (opening the images, building the lists, writing JSON) rather than the function's.
4. Parallel speed-up: ``benchmarks/cohort.py`` (COPIES copies at each job count, then cached).
5. Reference time-to-accuracy, from the archived reference results: wall time of each reference
   run on the hidden test set against its threshold, beside public anchors for CIFAR-10.

Usage: .venv/bin/python benchmarks/run.py [--repeat 7] [--skip probe,cohort] [--copies 8]
       [--jobs 1,2,4] [--cohort-submission DIR] [--cohort-profile ci]   (needs GRADER_DATA_DIR)
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
PEERS = ROOT / ".venv-peers"  # benchmarks/setup-peers.sh
CONTRACT = ("CLASS_NAMES = ['red', 'green', 'blue']\n"
            "def predict(images):\n    return ['red'] * len(images)\npredict_transfer = predict")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s  [{min(values):.2f}-{max(values):.2f}]"


def _run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    return _run_cpu(command, env, cwd)[0]


def _run_cpu(command: list[str], env: dict[str, str],
             cwd: Path | None = None) -> tuple[float, float]:
    """Run ``command``; its wall time and the CPU time (user + system, s) of it and every
    descendant it waited for (its kernel, the grader's runner), from ``getrusage``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[:4])}... failed:\n{done.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def overhead(repeat: int, tmp: Path, copies: int = 1) -> list[tuple[str, str]]:
    """Section 1: the same one-cell notebook through nbclient, nbconvert, papermill, nbval,
    nbgrader and the grader, each in a fresh process, interleaved, ``repeat`` times.

    With ``copies`` > 1, each tool is given ``copies`` notebooks (submissions, students) in one
    call, as a coach runs a cohort: nbclient loops in one process, nbconvert and nbval take
    every file, nbgrader autogrades every student, the grader checks every submission with
    ``--jobs 1``; papermill's command line takes one notebook, so its Python API loops in one
    process. Rows then give the time per notebook (the call's time / ``copies``).
    """
    import nbformat

    from grader.intake.notebook import inject_parameters
    from grader.sandbox.session import resolve_sandbox
    from tests.support.toy import build_toy, write_submission

    settings = build_toy(tmp / "toy")
    names = ["bench"] if copies == 1 else [f"bench{i:02d}" for i in range(copies)]
    folders = [write_submission(tmp / "subs", name, [CONTRACT], new_images=0) for name in names]
    plain = folders[0] / "toy.ipynb"
    params = {"DATA_DIR": str(settings.data_dir), "DEVICE": "cpu", "PROFILE": "full",
              "NEW_IMAGES_DIR": str(folders[0] / "new_images"), "MODEL_DIR": str(tmp / "model")}
    injected_nb = inject_parameters(nbformat.read(plain, as_version=4), params)
    injected = [tmp / f"{name}.ipynb" for name in names]
    for path in injected:
        nbformat.write(injected_nb, path)
    env = {**os.environ, "GRADER_PROJECT_DIR": str(settings.project_dir),
           "GRADER_DATA_DIR": str(settings.data_dir), "GRADER_CACHE_DIR": str(settings.cache_dir),
           "JUPYTER_PATH": str(_kernelspec(tmp))}
    py = sys.executable
    files = [str(path) for path in injected]
    papermill = ([str(BIN / "papermill"), "-k", "python3", "--no-progress-bar", str(plain),
                  str(tmp / "papermill.ipynb"), *[x for k, v in params.items() for x in ("-p", k, v)]]
                 if copies == 1 else
                 [py, "-c", "import sys, json, papermill\nfor i in range(int(sys.argv[3])):\n"
                  "    papermill.execute_notebook(sys.argv[1], f'{sys.argv[2]}{i}.ipynb', "
                  "parameters=json.loads(sys.argv[4]), kernel_name='python3', "
                  "progress_bar=False)", str(plain), str(tmp / "papermill"), str(copies),
                  json.dumps(params)])
    grader = [py, "-m", "grader", "check", *map(str, folders), "--no-cache", "--jobs", "1"]
    commands = {
        "nbclient": [py, "-c", "import sys, nbformat; from nbclient import NotebookClient\n"
                     "for path in sys.argv[1:]:\n"
                     "    NotebookClient(nbformat.read(path, as_version=4), "
                     "kernel_name='python3').execute()", *files],
        "nbconvert --execute": [str(BIN / "jupyter"), "nbconvert", "--to", "notebook",
                                "--execute", "--ExecutePreprocessor.kernel_name=python3",
                                *files, "--output-dir", str(tmp / "nbconvert")],
        "papermill" if copies == 1 else "papermill (Python API)": papermill,
        "grader check --sandbox none": [*grader, "--out", str(tmp / "out-none"),
                                        "--sandbox", "none"],
    }
    if resolve_sandbox("auto").sandboxed:
        commands["grader check --sandbox bwrap"] = [*grader, "--out", str(tmp / "out-bwrap"),
                                                    "--sandbox", "bwrap"]
    cwd: dict[str, Path] = {}
    envs: dict[str, dict[str, str]] = {}
    missing = _add_peers(commands, cwd, envs, env, injected, tmp)
    # what the grader's scoring imports and the peers do not (scikit-learn pulls in SciPy's
    # stats), beside a bare interpreter: its CPU time is a floor under the grader's own
    floor = {"python -c pass": [py, "-c", "pass"],
             "python -c 'import sklearn.metrics'": [py, "-c", "import sklearn.metrics"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in [*commands, *floor]}
    probe: dict[str, list[float]] = {name: [] for name in commands if name.startswith("grader")}
    run_wall: dict[str, list[float]] = {name: [] for name in probe}
    for name, command in commands.items():  # warm-up: caches, the toy's hidden set
        _run(command, envs.get(name, env), cwd.get(name))
    for _ in range(repeat):
        for name, command in commands.items():
            seconds, used = _run_cpu(command, envs.get(name, env), cwd.get(name))
            times[name].append(seconds / copies)
            cpu[name].append(used / copies)
            if name in probe:
                out = tmp / f"out-{name.split()[-1]}"
                runs = [json.loads((out / sub / "result.json").read_text())["notebooks"][0]
                        ["execution"] for sub in names]
                probe[name].append(sum(r.get("probe_s") or 0.0 for r in runs) / copies)
                run_wall[name].append(sum(r["wall_s"] for r in runs) / copies)
        if copies == 1:
            for name, command in floor.items():  # with one BLAS thread, as in the grader
                cpu[name].append(_run_cpu(command, {**env, "OPENBLAS_NUM_THREADS": "1"})[1])
    label = "overhead" if copies == 1 else f"overhead, {copies} per call, per notebook"
    base = statistics.median(times["nbclient"])
    base_cpu = statistics.median(cpu["nbclient"])
    rows = []
    for name, values in times.items():
        extra = statistics.median(values) - base
        used = statistics.median(cpu[name])
        note = f"{extra:+.2f} s over nbclient; " + (
            # the runner and kernel end inside bubblewrap's pid namespace, whose init is not
            # reaped into this process's rusage: their CPU would go uncounted
            "cpu not counted in the sandbox" if name.endswith("bwrap") else
            f"cpu {used:.2f} s ({used - base_cpu:+.2f} s)")
        if name in probe:
            p = statistics.median(probe[name])
            note += (f"; probe {p:.2f} s, fixed cost {extra - p:+.2f} s; "
                     f"run {statistics.median(run_wall[name]):.2f} s")
        rows.append((f"{label}: {name}", f"{_median(values)}  {note}"))
    if copies == 1:
        bare = statistics.median(cpu["python -c pass"])
        for name in floor:
            used = statistics.median(cpu[name])
            rows.append((f"{label}: {name}", f"cpu {used:.2f} s ({used - bare:+.2f} s over "
                         "python -c pass)"))
    return rows + [(f"{label}: {name}", "not measured: run benchmarks/setup-peers.sh")
                   for name in missing]


def _kernelspec(tmp: Path) -> Path:
    """A ``python3`` kernelspec for every tool but the grader (which drops ``JUPYTER_*`` from
    its kernel's environment and starts this interpreter's own): this interpreter's ipykernel,
    with ``grader/student/kernel/shutdown.py`` run at its start, as the grader runs it in its kernel.

    Without it, ipykernel's shutdown race (see that file) makes about one kernel in twelve
    take 3.5 s more to end, in every tool but the grader: the comparison would be decided by
    which runs met it. Returns the folder to put on ``JUPYTER_PATH``.
    """
    spec = tmp / "kernels" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    shutdown = ROOT / "grader" / "student" / "kernel" / "shutdown.py"
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 f"--IPKernelApp.exec_files={shutdown}"],
        "display_name": "Python 3", "language": "python"}))
    return spec.parent.parent


def _add_peers(commands: dict[str, list[str]], cwd: dict[str, Path],
               envs: dict[str, dict[str, str]], env: dict[str, str], notebooks: list[Path],
               tmp: Path) -> list[str]:
    """Add nbval and nbgrader autograde (from ``.venv-peers/``, benchmarks/setup-peers.sh) to
    ``commands``, running ``notebooks`` in the grader's own kernel; return those not installed.

    Both find the ``python3`` kernel through ``JUPYTER_PATH`` (see :func:`_kernelspec`), as
    the other tools do. nbgrader's course (an assignment ``ps1`` with the notebook released, one
    student per notebook, each with a submission) is made here, untimed; each timed run is
    ``nbgrader autograde ps1 --force``, with its environment's ``bin`` first on PATH (nbgrader
    runs ``alembic`` from there).
    """
    missing = []
    nbval = PEERS / "nbval" / "bin" / "python"
    if nbval.exists():
        commands["nbval (pytest --nbval-lax)"] = [
            str(nbval), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
            "--nbval-kernel-name", "python3", *map(str, notebooks)]
    else:
        missing.append("nbval (pytest --nbval-lax)")
    nbgrader = PEERS / "nbgrader" / "bin" / "nbgrader"
    if nbgrader.exists():
        course = tmp / "course"
        graded = {**env, "PATH": f"{nbgrader.parent}{os.pathsep}{env.get('PATH', '')}"}
        (course / "source" / "ps1").mkdir(parents=True, exist_ok=True)
        shutil.copy(notebooks[0], course / "source" / "ps1" / "toy.ipynb")
        (course / "nbgrader_config.py").write_text(
            'c = get_config()\nc.CourseDirectory.course_id = "bench"\n')
        students = [path.stem for path in notebooks]
        steps = [["generate_assignment", "ps1", "--force"],
                 *(["db", "student", "add", student] for student in students)]
        for step in steps:
            done = subprocess.run([str(nbgrader), *step], cwd=course, env=graded,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"nbgrader {step[0]} failed:\n{done.stderr[-2000:]}")
        for student in students:
            submitted = course / "submitted" / student / "ps1"
            submitted.mkdir(parents=True, exist_ok=True)
            shutil.copy(course / "release" / "ps1" / "toy.ipynb", submitted / "toy.ipynb")
        commands["nbgrader autograde"] = [str(nbgrader), "autograde", "ps1", "--force"]
        cwd["nbgrader autograde"] = course
        envs["nbgrader autograde"] = graded
    else:
        missing.append("nbgrader autograde")
    return missing


def startup(repeat: int) -> list[tuple[str, str]]:
    """Section 2: CLI start-up against a bare interpreter."""
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "grader --help": [sys.executable, "-m", "grader", "--help"],
                "grader challenges": [sys.executable, "-m", "grader", "challenges"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            times[name].append(_run(command, dict(os.environ)))
    base = statistics.median(times["python -c pass"])
    return [(f"start-up: {name}", f"{_median(v)}  {statistics.median(v) - base:+.3f} s over python")
            for name, v in times.items()]


PROBE_MODELS = {
    "constant": "def predict(images):\n    return [CLASS_NAMES[0]] * len(images)",
    "numpy linear": (
        "import numpy as np\nW = np.random.default_rng(0).normal(size=(32 * 32 * 3, 10))"
        ".astype(np.float32)\n"
        "def predict(images):\n"
        "    x = np.stack([np.asarray(im, dtype=np.float32).reshape(-1) for im in images])\n"
        "    return [CLASS_NAMES[i] for i in (x @ W).argmax(1)]"),
}


def probe_throughput(tmp: Path, repeat: int = 3) -> list[tuple[str, str]]:
    """Section 3: the probe on CIFAR-10's 10,000 hidden test images, ``repeat`` interleaved runs
    per model (the first run of all also reads the images from disk)."""
    from tests.support.toy import write_submission

    names = ("airplane automobile bird cat deer dog frog horse ship truck").split()
    folders = {label: write_submission(tmp / "probe", label.replace(" ", "-"),
                                       [f"CLASS_NAMES = {names!r}", model],
                                       challenge="cifar10-tf-cnn", new_images=0)
               for label, model in PROBE_MODELS.items()}
    rates: dict[str, list[float]] = {label: [] for label in folders}
    shares: dict[str, list[float]] = {label: [] for label in folders}
    sandboxed = {}
    for _ in range(repeat):
        for label, folder in folders.items():
            out = tmp / f"probe-out-{folder.name}"
            _run([sys.executable, "-m", "grader", "check", str(folder), "--out", str(out),
                  "--no-cache"], dict(os.environ))
            nb = json.loads((out / folder.name / "result.json").read_text())["notebooks"][0]
            model_row = next(m for m in nb["models"] if m["role"] == "predict")
            total, inside = model_row["seconds"], model_row.get("inference_s")
            rates[label].append(model_row["n"] / total)
            if inside is not None:
                shares[label].append(100 * (total - inside) / total)
            sandboxed[label] = nb["execution"]["sandboxed"]
    rows = []
    for label, values in rates.items():
        share = (f", transfer {statistics.median(shares[label]):.0f}% of it"
                 if shares[label] else "")
        rows.append((f"probe: predict = {label}",
                     f"{statistics.median(values):7.0f} images/s  [{min(values):.0f}-"
                     f"{max(values):.0f}] (10,000 images{share}; sandbox {sandboxed[label]})"))
    return rows


def cohort(copies: int, jobs: str, submission: Path, profile: str) -> list[tuple[str, str]]:
    """Section 4: benchmarks/cohort.py, its table passed through."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cohort.py"), "--copies",
                           str(copies), "--jobs", jobs, "--submission", str(submission),
                           "--profile", profile], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks/cohort.py failed:\n{done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    rows = [("parallel: what", lines[0].lstrip("# "))]
    for line in lines[2:]:
        wall, speedup, notes = line[28:].split(maxsplit=2)
        rows.append((f"parallel: {line[:28].strip()}",
                     f"{float(wall):7.1f} s  speed-up {speedup}x  {notes}"))
    return rows


def time_to_accuracy() -> list[tuple[str, str]]:
    """Section 5: archived reference results against their thresholds."""
    from grader.core.challenge import load_challenge
    from grader.score.rubric import load_rubric

    rows = []
    for path in sorted((ROOT / "reference_solutions" / "results").glob("*.json")):
        result = json.loads(path.read_text())
        nb = result["notebooks"][0]
        challenge = load_challenge(ROOT, nb["challenge"])
        rubric = load_rubric(ROOT, challenge.rubric)
        threshold = next((c.merged_params(nb["profile"]).get("threshold")
                          for c in rubric.criteria if c.check == "hidden_accuracy"
                          and c.merged_params(nb["profile"]).get("model", "predict") == "predict"),
                         None)
        accuracy = next((m["accuracy"] for m in nb["models"] if m["role"] == "predict"), None)
        if accuracy is None or threshold is None:
            continue
        reached = "reached" if accuracy >= threshold else "NOT reached"
        rows.append((f"time-to-accuracy: {path.stem}",
                     f"{nb['execution']['wall_s']:7.0f} s  {accuracy:.3f} vs {threshold:.2f} "
                     f"{reached} ({result['environment']['device']}, {result['finished'][:10]})"))
    if not any("(cuda" in value for _, value in rows):
        rows.append(("time-to-accuracy: GPU", "no archived result on a GPU: run `grader "
                     "verify-references --profile full --device cuda` on one (the target for "
                     "cifar10-kaggle's PyTorch reference on one H100 or H200: 0.94 in under 10 s "
                     "of training)"))
    rows.append(("time-to-accuracy: anchors", "airbench 94% CIFAR-10 in ~3.3 s on one A100; "
                 "DAWNBench best single V100: 94% in 72 s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip", default="", help="sections to skip: overhead, batch, startup, "
                        "probe, cohort, accuracy (comma-separated)")
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--jobs", default="1,2,4")
    parser.add_argument("--cohort-submission", type=Path,
                        default=ROOT / "reference_solutions" / "gear-classical",
                        help="the submission copied COPIES times (default: the gear-classical "
                        "reference, about 9 s per copy; examples/team3 with --cohort-profile "
                        "full trains two networks, about 160 s per copy)")
    parser.add_argument("--cohort-profile", default="ci")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if not os.environ.get("GRADER_DATA_DIR") and not {"probe", "cohort"} <= skip:
        sys.exit("set GRADER_DATA_DIR to the datasets folder (or --skip probe,cohort)")
    # the grader as installed: pip byte-compiles what it installs (the peers), not an editable
    # install's sources, which are compiled on every start where PYTHONDONTWRITEBYTECODE is set
    compileall.compile_dir(ROOT / "grader", quiet=1)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as name:
        tmp = Path(name)
        sections = [("overhead", lambda: overhead(args.repeat, tmp / "overhead")),
                    ("batch", lambda: overhead(max(1, args.repeat // 2), tmp / "batch",
                                               args.copies)),
                    ("startup", lambda: startup(args.repeat * 2)),
                    ("probe", lambda: probe_throughput(tmp)),
                    ("cohort", lambda: cohort(args.copies, args.jobs, args.cohort_submission,
                                              args.cohort_profile)),
                    ("accuracy", time_to_accuracy)]
        for section, run in sections:
            if section in skip:
                continue
            print(f"running {section}...", file=sys.stderr, flush=True)
            (tmp / section).mkdir(exist_ok=True)
            rows += run()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# grader benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, repeat {args.repeat}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:{width}}  {value}")


if __name__ == "__main__":
    main()
