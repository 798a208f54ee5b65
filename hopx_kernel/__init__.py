"""hopx-kernel: a Jupyter kernel ("HopX Remote Python") that runs each cell in a HopX sandbox.

Public pieces:
    HopxKernel        the kernel class (``hopx_kernel.kernel``)
    SandboxSession    the one seam to a sandbox (``hopx_kernel.session``)
    HopxKernelError   the root of every error (``hopx_kernel.errors``)

Commands: ``hopx-kernel install`` writes the kernelspec; ``hopx-kernel serve`` runs the
local sandbox server; ``python -m hopx_kernel -f CONNECTION_FILE`` runs the kernel.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
