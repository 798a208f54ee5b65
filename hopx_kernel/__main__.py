"""``python -m hopx_kernel``: the kernel (``-f CONNECTION_FILE``), or ``install`` / ``serve``."""

import sys


def main() -> None:
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-") or "--help" in sys.argv[1:2]:
        from .cli import main as cli

        sys.exit(cli())
    from .kernelapp import launch

    launch()


if __name__ == "__main__":
    main()
