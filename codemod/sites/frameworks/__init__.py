"""One module per framework: its APIs, their defaults, and how its setting is spelled.

Every module here registers itself with `codemod.sites.catalogue` on import, and the
catalogue imports them all on first use: a new framework is a new module here plus its
fixtures under `fixtures/<framework>/`.
"""
