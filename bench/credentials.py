"""Credential check benchmark (issue 14): the pre-build search of a build context for files that
look like credentials, on a generated context of N files (default 10,000; target: <= 1 s).

    python bench/credentials.py [--files 10000] [--rounds 5]

The context mixes what real projects hold: Python modules, small text and data files, a few
binaries, a .git and a .venv that .dockerignore leaves out, and one planted private key.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from testdock.engine.credentials import suspects
from testdock.images.initialize import _dockerignore


def make_context(root: Path, files: int) -> None:
    (root / ".dockerignore").write_text(_dockerignore(None, ("tests",))[0])
    for index in range(files):
        folder = root / ("src" if index % 3 else "tests") / f"pkg{index % 50}" / f"sub{index % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        kind = index % 10
        if kind < 6:
            (folder / f"module{index}.py").write_text(f"VALUE = {index}\n" * 40)
        elif kind < 9:
            (folder / f"data{index}.txt").write_text(f"line {index}\n" * 100)
        else:
            (folder / f"blob{index}.bin").write_bytes(bytes(range(256)) * 16)
    for ignored in (".git/objects", ".venv/lib"):
        for index in range(2000):
            path = root / ignored / f"f{index}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
    (root / "src" / "deploy.conf").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make_context(root, arguments.files)
        times = []
        for _ in range(arguments.rounds):
            started = time.perf_counter()
            found = suspects(root)
            times.append(time.perf_counter() - started)
        assert [item.path for item in found] == ["src/deploy.conf"], found
        best, median = min(times), statistics.median(times)
        print(f"{'files in context':<28} {arguments.files:>10,}")
        print(f"{'files left out (.git, .venv)':<28} {4000:>10,}")
        print(f"{'suspects found':<28} {len(found):>10}")
        print(f"{'check time, best (s)':<28} {best:>10.3f}")
        print(f"{'check time, median (s)':<28} {median:>10.3f}")
        print(f"{'target (s)':<28} {1.0:>10.3f}")
        print(f"{'median / target':<28} {median / 1.0:>10.2f}")


if __name__ == "__main__":
    main()
