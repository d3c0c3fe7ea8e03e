"""jaxsr's absl programs: ``train`` (:mod:`jaxsr.commands.train`) and ``eval``
(:mod:`jaxsr.commands.evaluate`).

Each module defines its flags in absl's global registry when imported, so a process imports
only the one it runs. Run one with ``start(argv, prog=...)``: ``jaxsr train ...`` and
``jaxsr eval ...`` do, as do the scripts ``train.py`` and ``eval.py`` at the top of the
source tree. Both print a user mistake as one line ``<prog>: error: ...`` and exit with
status 2; ``--help`` lists the program's flags and exits with status 0.
"""
