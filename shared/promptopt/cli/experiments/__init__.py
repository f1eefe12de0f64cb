"""`promptopt experiments ...`: create, estimate, start, follow and inspect prompt-optimization runs.

api       the /experiments endpoints over the CLI's client
body      the create/estimate request from flags or a JSON file
render    human views: estimate, experiment, runs, the final report, lineage, candidates
diff      the best prompt against the baseline (unified diff, colored on a terminal)
live      following a run: a progress bar, its step, iteration and spend, until it ends
commands  the command handlers
parser    the `experiments` group's arguments
"""
