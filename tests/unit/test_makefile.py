"""The Makefile's help names every target a newcomer can run."""

import re
import subprocess

from support.procs import ROOT


def test_make_help_lists_every_phony_target():
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split()
    helped = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = {line.split()[1] for line in helped.splitlines() if line.startswith("make ")}
    assert set(phony) - {"help"} == listed, set(phony) ^ listed
