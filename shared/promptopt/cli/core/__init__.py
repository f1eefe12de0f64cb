"""What every command module shares: the context and exit codes, paging, waiting and the command wrapper.

Command modules import from here and never from `promptopt.cli.main`, which only assembles the
parser: the import graph of the CLI points one way (main -> commands -> core).
"""
