"""dcwatch: watchdog and failover for two mirrored VMware datacenters, with AWS as the third site."""

__version__ = "0.1.0"
