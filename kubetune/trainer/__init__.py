"""`python -m kubetune.trainer`: the worker runtime's old module name, kept as an alias.

Manifests and images rendered before the runtime moved to `kubetune.runtime` still call
`torchrun -m kubetune.trainer`; this package runs the same command line. New manifests, images and
local launches call `kubetune.runtime`. Nothing else lives here: the name is kept free for a
client of Kubeflow Trainer V2's kind (`kubeflow.trainer` with the prefix swapped).
"""
