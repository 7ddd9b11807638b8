"""What of a build context the engine receives: .dockerignore read with the Docker SDK's own
pattern semantics (docker.utils.build: the last matching pattern wins, `!` re-includes, a
pattern also matches a path's leading folders), evaluated as a few combined regular
expressions per path rather than one per pattern, so that a 10,000-file context is walked in a
fraction of a second."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from docker.utils.build import Pattern, PatternMatcher
from docker.utils.fnmatch import translate


def read_patterns(context: Path) -> list[str]:
    """The context's .dockerignore lines, as the engine reads them."""
    try:
        text = (context / ".dockerignore").read_text(encoding="utf-8")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _alternation(patterns: list[tuple[int, Pattern]]) -> re.Pattern[str]:
    # latest pattern first: the alternative that matches first is the last matching pattern
    return re.compile("|".join(f"(?P<p{index}>{translate(pattern.cleaned_pattern.lower())[1:-1]})"
                               for index, pattern in reversed(patterns)))


class Matcher:
    """`matches(path)` is PatternMatcher(lines).matches(path), at a fraction of the cost."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.patterns: list[Pattern] = PatternMatcher(list(lines)).patterns
        indexed = list(enumerate(self.patterns))
        self._whole = _alternation(indexed) if indexed else None
        depths = sorted({len(pattern.dirs) for pattern in self.patterns})
        self._prefix = {depth: _alternation([(i, p) for i, p in indexed if len(p.dirs) == depth])
                        for depth in depths}
        self.reincludes = [pattern.cleaned_pattern for pattern in self.patterns if pattern.exclusion]

    def _last(self, regex: re.Pattern[str] | None, text: str) -> int:
        match = regex.fullmatch(text) if regex is not None else None
        return int(match.lastgroup[1:]) if match is not None and match.lastgroup else -1

    def matches(self, path: str) -> bool:
        """Whether `path` (relative, POSIX) is left out of the context."""
        lowered = path.lower()
        last = self._last(self._whole, lowered)
        parents = lowered.split("/")[:-1]
        for depth, regex in self._prefix.items():
            if depth > len(parents):
                break
            last = max(last, self._last(regex, "/".join(parents[:depth])))
        return last >= 0 and not self.patterns[last].exclusion

    def walk(self, root: Path) -> Iterator[str]:
        """The paths (relative, POSIX) under `root` the engine receives, folders pruned as the
        Docker SDK prunes them (unless a `!` pattern may re-include something inside)."""
        stack = [""]
        while stack:
            relative = stack.pop()
            try:
                entries = list(os.scandir(root / relative if relative else root))
            except OSError:
                continue
            for entry in entries:
                path = f"{relative}/{entry.name}" if relative else entry.name
                left_out = self.matches(path)
                if not left_out:
                    yield path
                if entry.is_dir(follow_symlinks=False) and (
                        not left_out or any(pattern.startswith(path) for pattern in self.reincludes)):
                    stack.append(path)
