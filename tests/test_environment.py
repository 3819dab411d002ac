"""environment.yml (conda) and pyproject.toml (pip) must list the same dependencies."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = {normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    conda_side = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        m = re.match(r"^\s+- (?!pip$|python=|-e )(.+)$", line)
        if m and not line.strip().endswith(":"):
            conda_side.add(normalise(m.group(1)))
    assert pip_side == conda_side, f"only in pyproject: {pip_side - conda_side}; only in environment.yml: {conda_side - pip_side}"
