"""Hyperparameter tuning: the Katib trial program and the Experiment run on one machine.

- trial: `xgbflow trial`, what the Experiment's trial template runs in the train image;
- experiment: read and check a rendered Katib Experiment before anything runs;
- collector: what Katib's StdOut metrics collector makes of a trial's output;
- suggest: Bayesian optimisation (scikit-optimize, as in Katib) and random search;
- stopping: the medianstop early-stopping rule, service side and collector side;
- local: `xgbflow tune`, the whole Experiment with worker processes on this machine;
- report: the progress display, the table of trials and the best-parameters file;
- promote: `xgbflow promote-params`, best parameters into an overlay's pipeline params.
"""
