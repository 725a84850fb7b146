"""`make bench`: the probe engine against Prometheus blackbox_exporter on loopback targets (not shipped)."""
