"""A service's log, cut to what says why it failed: repeated lines once, with a count,
and the lines around the first one that looks like an error. Pure."""

from __future__ import annotations

import re

ERROR = re.compile(
    r"error|exception|traceback|fatal|panic|refused|denied|failed|cannot|unable", re.IGNORECASE
)


def excerpt(text: str, *, lines: int = 20) -> str:
    """At most `lines` lines of `text`: runs of one repeated line collapsed into the line
    and how many times it came; from the first error-looking line on (with two lines
    before it) when there is one, else the last lines."""
    collapsed: list[tuple[str, int]] = []
    for line in text.rstrip("\n").splitlines():
        if collapsed and collapsed[-1][0] == line:
            collapsed[-1] = (line, collapsed[-1][1] + 1)
        else:
            collapsed.append((line, 1))
    first_error = next((i for i, (line, _) in enumerate(collapsed) if ERROR.search(line)), None)
    if len(collapsed) > lines:
        start = max(first_error - 2, 0) if first_error is not None else len(collapsed) - lines
        collapsed = collapsed[start : start + lines]
    return "\n".join(line if n == 1 else f"{line}  (repeated {n} times)" for line, n in collapsed)
