"""``python -m hopx_kernel``: the kernel (``-f CONNECTION_FILE``), or ``install`` / ``serve``."""

import sys


def main() -> None:
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-") or "--help" in sys.argv[1:2]:
        from .cli import main as cli

        sys.exit(cli())
    # Embedded mode: boot the local sandbox server while ipykernel imports (~0.3 s saved).
    from . import embedded

    embedded.prestart()

    from ipykernel.kernelapp import IPKernelApp

    from .kernel import HopxKernel

    IPKernelApp.launch_instance(kernel_class=HopxKernel)


if __name__ == "__main__":
    main()
