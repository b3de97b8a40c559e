"""The `phonegrade` subcommands, one module each. Every module has `register(subparsers)`, which adds its parser
and sets `run` (args → exit status) as its default; `phonegrade.cli` lists them. Commands use the library and never
each other."""
