"""Backends decide where a job's processes run: on this machine or on a Kubernetes cluster."""
