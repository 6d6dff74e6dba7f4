"""Causal analysis of image quality versus DNN accuracy (Drenkow & Unberath 2025 framing).

The stated graph (:mod:`qbench.causal.graph`): content (the source photograph), corruption type
and severity produce the image; an IQA score and a task model's correctness are both functions
of the image. A metric can predict accuracy only where it responds to the same factors as the
task model. Modules, each one job, all reading the wide table of :func:`qbench.causal.sweep.table`
(columns ``item, label, group, corruption, severity`` + one column per scorer):

* :mod:`~qbench.causal.frame` -- orienting scores by their declared direction, accuracy columns;
* :mod:`~qbench.causal.graph` -- the causal graph (networkx DiGraph / GML) DoWhy uses;
* :mod:`~qbench.causal.effects` -- DoWhy effect of each (corruption, severity) vs clean on
  accuracy and on every metric, with refuters and their p-values;
* :mod:`~qbench.causal.alignment` -- per-metric alignment (Spearman between response and
  accuracy profiles) and within-content AUROC for correctness, both with cluster bootstrap CIs;
* :mod:`~qbench.causal.attribution` -- ``dowhy.gcm`` arrow strengths of content, corruption
  type and severity into accuracy and into each metric;
* :mod:`~qbench.causal.synthetic` -- a table of the sweep's shape with a planted effect (tests);
* :mod:`~qbench.causal.sweep` -- runs the sweep (task models x metrics x corruption grid).

Submodules are imported on demand, so ``import qbench.causal`` stays light (no DoWhy).
"""
