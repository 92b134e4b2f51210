"""Everything MLflow: the store and its probe, the run tags every run shares, the tracked
training, baseline and scoring runs, logging and registering pyfunc models, loading by URI,
promotion and its lock, provenance. The only package that imports MLflow (always inside
functions, so importing it costs nothing).
"""
