"""`make rehearsal`: the real hub and spoke templates deployed into LocalStack, drift fixed by the deployed
functions (docs/rehearsal.md). `python -m devkit.rehearsal` runs it; `run.py` is the sequence."""
