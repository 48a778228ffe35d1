"""UCI Adult (census income) tooling: a generator of files in the exact UCI
format and the preparation of the multi-task job's party CSVs.

Run ``splitrec data census --help`` for the command line.
"""
