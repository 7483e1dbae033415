"""Serving precipdiff models through MLflow (pyfunc "models from code": no pickled objects)."""
