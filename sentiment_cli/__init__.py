"""The `sentiment` command line: train, evaluate, predict, info, validate, pipeline,
promote, champion, score, sweep.

It sits on top of the `sentiment` library (which never imports it); `pipeline` and `score`
are the commands that reach into the Prefect flows, and only when they run.
"""
