"""Logger and metrics, one instance each for every handler (Powertools: JSON logs, EMF metrics)."""

from aws_lambda_powertools import Logger, Metrics

SERVICE = "dcwatch"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="dcwatch", service=SERVICE)
