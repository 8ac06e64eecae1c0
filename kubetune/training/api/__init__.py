"""Kubeflow Training V1's client API: `kubetune.training.api.training_client.TrainingClient`."""
