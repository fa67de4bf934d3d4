"""The run layer: command line, sweep configuration, plan, worker, driver, executors and the
post-run stages. It sits on top of everything (framework, plugins, reports) and is the only
code allowed to import all of it; nothing below imports it.

* :mod:`harness.run.config` — the sweep TOML, validated against the registries;
* :mod:`harness.run.plan` — the config expanded into training and evaluation cells;
* :mod:`harness.run.worker` — one training cell: train (or restore) and evaluate its grid;
* :mod:`harness.run.executors` — where training cells run (here, a process pool, Ray);
* :mod:`harness.run.driver` — the run directory, its lock and store, and the loop over cells;
* :mod:`harness.run.post_run` — dataset cards, deployment profiles and galleries after the grid;
* :mod:`harness.run.cli` — the ``mcer-bench`` command.
"""
