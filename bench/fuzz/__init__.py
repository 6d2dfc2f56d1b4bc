"""Coverage-guided fuzzing of what the appliance reads from outside (issue 11, "Bad input").

``python -m bench.fuzz`` (bench/soak.py's fuzz stage) runs every target for ``--seconds``:
``targets.py`` (the frames, Green Button, rules and configuration targets and what counts as a
crash), ``harness.py`` (one atheris run of one target), ``api.py`` (schemathesis against the live
appliance, with and without a token). tests/fuzz/ runs the same targets briefly with hypothesis.
Crashing and slow inputs are saved under ``bench/fuzz/crashes/`` (gitignored).
"""
