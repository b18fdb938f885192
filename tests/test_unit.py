"""Runs the unit tests of single modules (tests/unit/test_*.c, built by `make unit` into BUILD/unit/).
Each prints TAP; every "not ok" line, a missing plan, or a non-zero exit fails its test here."""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / os.environ.get("MWCOMMS_BUILD", "build")
UNITS = sorted(p.stem for p in (ROOT / "tests" / "unit").glob("test_*.c"))


@pytest.mark.parametrize("name", UNITS)
def test_unit(name):
    exe = BUILD / "unit" / name
    assert exe.exists(), f"{exe} is not built (make unit)"
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    failed = [l for l in r.stdout.splitlines() if l.startswith("not ok")]
    plan = re.search(r"^1\.\.(\d+)$", r.stdout, re.M)
    assert not failed, "\n".join(failed) + "\n" + r.stderr[-2000:]
    assert plan and int(plan.group(1)) > 0, f"no plan in the output:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stderr[-2000:]}"
