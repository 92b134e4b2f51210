"""The `sentiment` command line: train, evaluate, predict, info, validate, pipeline.

It sits on top of the `sentiment` library (which never imports it); `pipeline` is the one
command that reaches into the Prefect flows, and only when it runs.
"""
