"""Where sandbox code runs: each sandbox's IPython kernel (the runner in the server, the
launcher in the kernel process), bash and javascript subprocesses, Landlock confinement,
race-free file operations and the shared completer cache.
"""
