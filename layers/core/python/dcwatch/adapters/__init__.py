"""Adapters: the only modules that talk to AWS, vCenter or the network."""
