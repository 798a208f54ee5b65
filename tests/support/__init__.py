"""What the test suites share: a local server process, kernels driven through
jupyter_client, raw calls to the server, and the reliability suites' helpers."""
