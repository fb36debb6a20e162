"""Copy the tables written by the benchmarks (results/*.md) into README.md, verbatim.

README.md marks each spot with ``<!-- BEGIN results/NAME.md -->`` ... ``<!-- END results/NAME.md -->``;
this script replaces what lies between with the current file, so no number in the README is typed
by hand. Run it after a benchmark: ``python benchmarks/update_readme.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATTERN = re.compile(r"(<!-- BEGIN (results/[\w.-]+\.md) -->\n)(.*?)(<!-- END \2 -->)", re.S)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()

    def splice(m: re.Match) -> str:
        src = ROOT / m.group(2)
        if not src.exists():
            print(f"update_readme: {src} is missing; run its benchmark first", file=sys.stderr)
            return m.group(0)
        body = src.read_text()
        body = re.sub(r"^# ", "#### ", body, flags=re.M)  # demote the file's title under the README's section
        body = re.sub(r"^## ", "##### ", body, flags=re.M)
        return m.group(1) + body.rstrip("\n") + "\n" + m.group(4)

    new, n = PATTERN.subn(splice, text)
    readme.write_text(new)
    print(f"update_readme: refreshed {n} table(s) in {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
