"""What a local sandbox is, apart from HTTP and from how processes run: sandboxes and
their registry, the warm pool, one execution, background processes, environment
variables and the sandbox's paths.
"""
