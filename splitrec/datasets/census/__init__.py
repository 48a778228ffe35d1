"""UCI Adult (census income) tooling: a generator of files in the exact UCI
format and the preparation of the multi-task job's party CSVs.

Run ``python -m splitrec.datasets.census --help`` for the command line.
"""
