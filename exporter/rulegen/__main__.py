"""``python -m exporter.rulegen [--check]``: write (or check) the generated rules and dashboards."""

from __future__ import annotations

import argparse
import sys

from exporter.rulegen.profiles import ProfileError
from exporter.rulegen.render import write_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.rulegen", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a committed file differs from the generated one")
    args = parser.parse_args(argv)
    try:
        stale = write_files(check=args.check)
    except ProfileError as err:
        print(err, file=sys.stderr)
        return 2
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + path)
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
