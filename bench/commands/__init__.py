"""One module per `codiff-bench` sub-command; each defines `register(subparsers)`.

Modules here import only light dependencies at top level so that `codiff-bench --help` stays fast.
"""
