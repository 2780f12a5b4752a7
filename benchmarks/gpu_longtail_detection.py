# ultralytics-weighted, AGPL-3.0 license
"""Run the long-tailed detection comparison in one device call: carried wheels and data, results under $OUT.

Here (with internet to PyPI), once:
      python benchmarks/gpu_longtail_detection.py --prepare
  builds the carry folder .carry/ (git-ignored): wheels/ (ultralytics and ultralytics-thop at the installed versions,
  downloaded with `pip download --no-deps`, and this project's wheel from `pip wheel --no-deps .`) and
  data/construction-safety-longtail (benchmarks/longtail_detection.py with its defaults).
On the device machine (torch with CUDA, opencv, pandas, matplotlib; no ultralytics, no polars, no network):
      python benchmarks/gpu_longtail_detection.py --out "$OUT" [key=value ...]
  unpacks the wheels into a work folder put first on PYTHONPATH (its sitecustomize.py runs the .pth startup hook), adds
  the stand-in for polars (benchmarks/polars_standin), points the data's `path:` at its carried copy, runs
  `ultralytics-weighted compare` with the settings below (key=value arguments replace or add to them) and copies
  compare.md, compare.csv, compare.png and each run's results.csv, metrics.json, run.json, train.log and
  per_image.npz to $OUT (not the weights), also when compare stops early.
Here, to see what a device call would do (no wheels unpacked, nothing trained; the .carry/ need not exist yet):
      python benchmarks/gpu_longtail_detection.py --dry-run [key=value ...]
  prints the compare command. The variants are the CPU detection benchmark's (benchmarks/longtail_composite.py):
  stock, Ultralytics' `cls_pw` at 0.25 and 0.5, `mean`, `auto`, LVIS repeat-factor sampling (`rfs`: needs a wheel
  whose `balance_agg` accepts rfs), `mean+balance_floor=1` and the prior correction of `mean` at tau 0.5 and 1.

Standard library only until the wheels are unpacked: the device machine has no ultralytics to import.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARRY = ROOT / ".carry"
DATA_NAME = "construction-safety-longtail"
CARRY_LIMIT_MIB = 64  # what one device call may carry, all paths together
# The CPU detection benchmark's variants (longtail_composite.VARIANTS; a test checks they agree): 7 trained variants
# (the tau variants correct `mean`'s runs) x 3 seeds = 21 runs, 7 at a time: three full waves. Epochs sized from
# Preset 2 (8 parallel runs at 416 px: ~20 s per epoch on 2,097 images, ~840 images/s in all): 21 runs x 331 images
# x 40 epochs = 278k images, ~330 s at that rate (320 px only speeds it up), plus ~3 x 35 s of start-up and final
# evaluation per wave, inside the 500 s budget. yolo11n.yaml: from scratch (no weights can be fetched there).
# val=False: the final weights are evaluated on val + test, no epoch is picked on the evaluation split.
SETTINGS = {
    "model": "yolo11n.yaml",
    "variants": "none,cls_pw=0.25,cls_pw=0.5,mean,auto,rfs,mean+balance_floor=1,mean+tau=0.5,mean+tau=1",
    "seeds": "3",
    "epochs": "40",
    "imgsz": "320",
    "batch": "32",
    "cache": "ram",
    "device": "0",
    "parallel": "7",
    "workers": "14",
    "val": "False",
    "plots": "False",
}
RUN_FILES = ("results.csv", "metrics.json", "run.json", "train.log", "per_image.npz")  # npz: main's intervals
SITECUSTOMIZE = "import os, site; site.addsitedir(os.path.dirname(os.path.abspath(__file__)))  # runs the .pth hook\n"


def prepare(carry: Path, source: Path) -> None:
    """Build the carry folder: the three wheels and the long-tailed detection dataset."""
    sys.path.insert(0, str(Path(__file__).parent))
    from longtail_detection import build

    shutil.rmtree(carry, ignore_errors=True)
    wheels = carry / "wheels"
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in ("ultralytics", "ultralytics-thop")]
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "-d", str(wheels), *pins], check=True)
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    build(source, carry / "data" / DATA_NAME)
    sizes = {p.relative_to(carry): p.stat().st_size for p in carry.rglob("*") if p.is_file()}
    total = sum(sizes.values()) / 2**20
    for wheel in sorted(wheels.iterdir()):
        print(f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB")
    print(f"{carry}: {len(sizes)} files, {total:.1f} MiB (limit {CARRY_LIMIT_MIB} MiB)")
    if total > CARRY_LIMIT_MIB:
        raise SystemExit(f"{carry} is {total:.1f} MiB, more than a device call carries ({CARRY_LIMIT_MIB} MiB)")


def unpack(carry: Path, site: Path) -> None:
    """Unpack every carried wheel into `site` (pure-Python wheels: unzipping is installing) with the polars stand-in."""
    shutil.rmtree(site, ignore_errors=True)
    for wheel in sorted((carry / "wheels").glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    shutil.copytree(Path(__file__).parent / "polars_standin" / "polars", site / "polars")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)


def missing_requirements(site: Path) -> list[str]:
    """Return Ultralytics' required modules that this interpreter cannot import (polars is stood in for)."""
    modules = {"opencv-python": "cv2", "pillow": "PIL", "pyyaml": "yaml", "ultralytics-thop": "thop"}
    modules["nvidia-ml-py"] = "pynvml"
    metadata = next(site.glob("ultralytics-*.dist-info")) / "METADATA"
    names = re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)[^;\n]*$", metadata.read_text(), re.M)  # not the extras
    sys.path.insert(0, str(site))
    missing = [n for n in names if not importlib.util.find_spec(modules.get(n.lower(), n.lower().replace("-", "_")))]
    sys.path.remove(str(site))
    return missing


def compare_command(yaml_file: Path, work: Path, overrides: list[str]) -> list[str]:
    """Return the compare command line: the settings, updated by key=value overrides, on the data YAML."""
    settings = {**SETTINGS, **dict(arg.split("=", 1) for arg in overrides)}
    cli = "import sys; from ultralytics_weighted.commands.cli import main; sys.exit(main())"
    keys = [f"{k}={v}" for k, v in settings.items()]
    return [sys.executable, "-c", cli, "compare", f"data={yaml_file}", *keys, f"project={work}", f"name={DATA_NAME}"]


def run(carry: Path, out: Path, work: Path, overrides: list[str], budget: float, dry_run: bool = False) -> int:
    """Unpack, run compare with the settings (updated by key=value overrides) and copy the results to `out`.

    With `dry_run`, print what would be unpacked and the compare command, and touch nothing.
    """
    start = time.time()
    site, data = work / "site", work / "data" / DATA_NAME
    yaml_file = data / "data.yaml"
    cmd = compare_command(yaml_file, work, overrides)
    if dry_run:
        wheels = sorted(p.name for p in (carry / "wheels").glob("*.whl"))
        print(f"would unpack into {site}: {', '.join(wheels) or f'the wheels of {carry} (not prepared yet)'}")
        print(f"would copy {carry / 'data' / DATA_NAME} to {data}, run (budget {budget:.0f} s) and copy to {out}:")
        print("ultralytics-weighted compare", " ".join(cmd[4:]), flush=True)
        return 0
    unpack(carry, site)
    missing = missing_requirements(site)
    print(f"unpacked {len(list((carry / 'wheels').glob('*.whl')))} wheels into {site}; missing: {missing or 'none'}")
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(carry / "data" / DATA_NAME, data)
    yaml_file.write_text(re.sub(r"(?m)^path: .*$", f"path: {data}", yaml_file.read_text()))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(":")}
    env.update(YOLO_OFFLINE="1", PYTHONUNBUFFERED="1")
    print("ultralytics-weighted compare", " ".join(cmd[4:]), flush=True)
    # in a folder of its own group: the runs stop with it, and `-c` puts the working directory first on sys.path,
    # where the repository's own package would shadow the unpacked wheel
    compare = subprocess.Popen(cmd, env=env, cwd=work, start_new_session=True)
    try:
        code = compare.wait(timeout=max(1.0, budget - (time.time() - start)))
    except subprocess.TimeoutExpired:
        os.killpg(compare.pid, signal.SIGTERM)
        code = compare.wait()
        print(f"compare stopped after the budget of {budget:.0f} s; copying what it wrote")
    results = work / DATA_NAME
    out.mkdir(parents=True, exist_ok=True)
    for file in results.glob("compare.*"):
        shutil.copy2(file, out / file.name)
    for file in (p for name in RUN_FILES for p in (results / "runs").glob(f"*/{name}")):
        (out / "runs" / file.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, out / "runs" / file.parent.name / file.name)
    (out / "manifest.json").write_bytes((data / "manifest.json").read_bytes())
    print(f"compare exit code {code}, {time.time() - start:.0f} s in all; results in {out}")
    return code


def main() -> int:
    """Prepare the carry folder here, or run the comparison on the device machine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="compare key=value settings replacing or adding to the defaults")
    parser.add_argument("--prepare", action="store_true", help="build the carry folder (here, with PyPI access)")
    parser.add_argument("--carry", type=Path, default=CARRY)
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "datasets" / "construction-safety")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/gpu-out")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/ultralytics-weighted-gpu"))
    parser.add_argument("--budget", type=float, default=500, help="seconds for everything; compare is stopped after")
    parser.add_argument("--dry-run", action="store_true", help="print what would be unpacked and run; run nothing")
    args = parser.parse_args()
    if args.prepare:
        prepare(args.carry.resolve(), args.source.resolve())
        return 0
    return run(args.carry.resolve(), args.out.resolve(), args.work.resolve(), args.overrides, args.budget, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
