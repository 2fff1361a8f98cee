"""Batch capture on Ray: many inputs reconstructed by the pipeline of ``reconstruct``, one Ray task per clip
(or per chunk of a long video), on this machine or on a cluster.

Modules, one job each: ``inputs`` (INPUTS to clips and result names), ``manifest`` (what is done, for which
options: resuming), ``tasks`` (what a worker runs), ``scheduling`` (Ray resources and the task loop),
``cluster`` (a local Ray or ``--address``), ``chunks``, ``stitch`` and ``camera_chain`` (long clips over
several workers, cut at shot cuts; one identity per person and one camera path across chunk borders), ``runner`` (a batch from start to end), ``progress`` (the bar and
the table), ``cli`` (the command). Ray is optional (``pip install 'troupe[batch]'``): nothing here imports it
before a batch starts.
"""
