"""Publishing a finished solve where its issue lives: a GitHub issue comment and a draft pull request.

Kept free of heavy imports: `solver_core.models` imports the option and result models from here.
"""
