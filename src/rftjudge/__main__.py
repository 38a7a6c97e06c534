"""``python -m rftjudge``: the command line (the same as the ``rftjudge`` script)."""


from .app.cli import main

main()
